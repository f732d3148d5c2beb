"""Missing minute bars in the warehouse: per ticker, the session minutes with no ``AM`` row.

A session is the regular market hours, 09:30-16:00 America/New_York on weekdays (holidays have no bars,
so they show no gap; an early close shows its afternoon as missing). Against the local replay server
(a ``polygon.rest_url`` on this machine) the sessions are the replay's, read from its
``/_control/sessions``. A ticker is audited for a session when it has at least one minute bar in it;
the audit runs up to the newest bar of the session in the table, so a session in progress is not
reported as missing its future. All the work is one aggregate query per session in ClickHouse: each
ticker's sorted minutes in an array, holes are the steps longer than a minute.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, time, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from rtfin_cli.errors import ServiceUnavailable
from rtfin_cli.sources.news import LOCAL_HOSTS

if TYPE_CHECKING:
    from rtfin_cli.settings import RtfinSettings

MINUTE_MS = 60_000
NEW_YORK = ZoneInfo("America/New_York")


@dataclass(frozen=True)
class Session:
    open_ms: int
    close_ms: int


@dataclass(frozen=True)
class Hole:
    """Minutes ``from_ms``..``to_ms`` (bar starts, inclusive) of ``sym`` have no bar."""

    sym: str
    from_ms: int
    to_ms: int

    @property
    def minutes(self) -> int:
        return (self.to_ms - self.from_ms) // MINUTE_MS + 1


@dataclass
class GapReport:
    sessions: list[Session]
    tickers: int = 0  # ticker-sessions audited
    holes: list[Hole] = field(default_factory=list)
    repaired: int | None = None  # bars produced from REST (None without --repair)

    @property
    def missing(self) -> int:
        return sum(h.minutes for h in self.holes)

    def as_dict(self) -> dict[str, Any]:
        return {
            "sessions": [_iso_pair(s) for s in self.sessions],
            "tickers_audited": self.tickers,
            "missing_minutes": self.missing,
            "holes": [
                {**asdict(h), "from": _iso(h.from_ms), "to": _iso(h.to_ms), "minutes": h.minutes}
                for h in self.holes
            ],
            "repaired": self.repaired,
        }


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _iso_pair(s: Session) -> dict[str, str]:
    return {"open": _iso(s.open_ms), "close": _iso(s.close_ms)}


def market_sessions(since_ms: int, until_ms: int) -> list[Session]:
    """Regular-hours sessions (09:30-16:00 New York, weekdays) that overlap [since, until)."""
    day = datetime.fromtimestamp(since_ms / 1000, NEW_YORK).date()
    last = datetime.fromtimestamp(until_ms / 1000, NEW_YORK).date()
    out = []
    while day <= last:
        if day.weekday() < 5:
            o = datetime.combine(day, time(9, 30), NEW_YORK)
            c = datetime.combine(day, time(16, 0), NEW_YORK)
            out.append(Session(int(o.timestamp() * 1000), int(c.timestamp() * 1000)))
        day += timedelta(days=1)
    return [s for s in out if s.close_ms > since_ms and s.open_ms < until_ms]


def replay_sessions(rest_url: str, since_ms: int, until_ms: int, timeout: float) -> list[Session]:
    """The local replay server's sessions (as it shows them) that overlap [since, until)."""
    import httpx

    url = rest_url.rstrip("/") + "/_control/sessions"
    try:
        body = httpx.get(url, timeout=timeout).json()
        sessions = [Session(_ms(s["open"]), _ms(s["close"])) for s in body["sessions"]]
    except (httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
        raise ServiceUnavailable(
            f"cannot read the replay server's sessions from {url} ({exc})",
            "Start it with `rtfin local market start`, or point polygon.rest_url at the real API.",
        ) from None
    return [s for s in sessions if s.close_ms > since_ms and s.open_ms < until_ms]


def _ms(text: str) -> int:
    return int(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() * 1000)


def sessions_for(settings: RtfinSettings, since_ms: int, until_ms: int) -> list[Session]:
    pol = settings.polygon
    if (urlsplit(pol.rest_url).hostname or "") in LOCAL_HOSTS:
        return replay_sessions(pol.rest_url, since_ms, until_ms, pol.timeout_s)
    return market_sessions(since_ms, until_ms)


HOLES_SQL = """
WITH (
    SELECT max(s) FROM {db:Identifier}.stock_aggs
    WHERE ev = 'AM' AND s >= {open:Int64} AND s < {close:Int64}
) + 60000 AS horizon
SELECT sym, holes FROM (
    SELECT sym,
           arrayConcat([{open:Int64} - 60000], arraySort(groupUniqArray(s)), [least({close:Int64}, horizon)]) AS b,
           arrayFilter(x -> x.2 - x.1 > 60000, arrayZip(arrayPopBack(b), arrayPopFront(b))) AS holes
    FROM {db:Identifier}.stock_aggs
    WHERE ev = 'AM' AND s >= {open:Int64} AND s < {close:Int64} {tickers}
    GROUP BY sym
)
ORDER BY sym
"""


def find_holes(
    client: Any, raw_db: str, session: Session, tickers: list[str] | None
) -> tuple[int, list[Hole]]:
    """(tickers audited, holes) of one session: a single aggregate query, one row per ticker."""
    params: dict[str, Any] = {"open": session.open_ms, "close": session.close_ms, "db": raw_db}
    where = ""
    if tickers:
        where, params["tickers"] = "AND sym IN {tickers:Array(String)}", tickers
    rows = client.query(HOLES_SQL.replace("{tickers}", where), parameters=params).result_rows
    holes = [Hole(sym, a + MINUTE_MS, b - MINUTE_MS) for sym, pairs in rows for a, b in pairs]
    return len(rows), holes


def audit(settings: RtfinSettings, since_ms: int, until_ms: int, tickers: list[str] | None) -> GapReport:
    """Every hole in the minute bars of the sessions overlapping [since, until)."""
    from rtfin_cli.warehouse.client import errors, get_client

    report = GapReport(sessions_for(settings, since_ms, until_ms))
    client = get_client(settings)
    try:
        with errors(settings.clickhouse, "auditing minute bars"):
            for session in report.sessions:
                n, holes = find_holes(client, settings.clickhouse.raw_database, session, tickers)
                report.tickers += n
                report.holes.extend(holes)
    finally:
        client.close()
    return report
