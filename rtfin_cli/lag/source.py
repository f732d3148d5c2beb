"""What the sources say about time: the event clock data age is measured on, and whether a feed is quiet.

Real deployments measure data age against the wall clock: event time is when the market produced the bar
or the publisher the article. The local market replay runs ``speed`` times faster than real time from a
start it shifts to "now", so its event times run ahead of the wall clock; measured against the wall clock
every age would be negative. When the news source is the replay (a loopback ``polygon.rest_url``), its
``/_control/status`` gives the replay clock, which becomes "now" for data age, plus whether its market is
open, when it opens next and the newest article it has published — so a quiet feed (market closed, no
news) is told apart from a stalled producer. Anywhere else the market is the NYSE regular session
(09:30–16:00 New York, Monday–Friday; exchange holidays are not known) and news quietness cannot be seen.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from rtfin_cli.settings import PolygonSettings

LOOPBACK = {"127.0.0.1", "localhost", "::1"}
OPEN_MIN, CLOSE_MIN = 9 * 60 + 30, 16 * 60  # New York local time, minutes after midnight


@dataclass
class SourceClock:
    """Event-time "now" (epoch s) and what is known about the sources at that moment."""

    now: float
    speed: float = 1.0  # event seconds per wall second
    replay: bool = False  # the clock is the market replay's
    market_open: bool | None = None
    next_open: float | None = None  # epoch s (event time) of the next session open while closed
    opened: float | None = None  # epoch s (event time) of the current session's open while open
    newest_article: float | None = None  # epoch s (event time) of the newest article the source serves
    next_article: float | None = None  # the first article published after the one asked about (None: none)
    error: str = ""  # the replay could not be asked: wall clock used
    wall: float | None = None  # the wall time (epoch s) at which ``now`` was read (None: now is the wall)

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _iso(value: Any) -> float | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return dt.datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def _new_york() -> dt.tzinfo:
    try:
        from zoneinfo import ZoneInfo

        return ZoneInfo("America/New_York")
    except Exception:  # noqa: BLE001 - no tz database: Eastern Standard Time
        return dt.timezone(dt.timedelta(hours=-5))


def _open_at(day: dt.date, tz: dt.tzinfo) -> float:
    return dt.datetime(day.year, day.month, day.day, OPEN_MIN // 60, OPEN_MIN % 60, tzinfo=tz).timestamp()


def nyse_session(now: float) -> tuple[bool, float]:
    """(open now, the current session's open while open, else the next open) for the NYSE regular session
    at wall time ``now`` (epoch s)."""
    tz = _new_york()
    local = dt.datetime.fromtimestamp(now, tz)
    minute = local.hour * 60 + local.minute
    if local.weekday() < 5 and OPEN_MIN <= minute < CLOSE_MIN:
        return True, _open_at(local.date(), tz)
    day = local.date() + dt.timedelta(days=0 if local.weekday() < 5 and minute < OPEN_MIN else 1)
    while day.weekday() >= 5:
        day += dt.timedelta(days=1)
    return False, _open_at(day, tz)


class SourceProbe:
    """Reads the replay's clock when the news source is on loopback; the wall clock otherwise."""

    def __init__(self, polygon: PolygonSettings, timeout: float = 1.0) -> None:
        url = urlsplit(polygon.rest_url)
        self.status_url = f"{url.scheme}://{url.netloc}/_control/status" if url.hostname in LOOPBACK else None
        self.timeout = timeout

    def read(self, after: float | None = None) -> SourceClock:
        """The clock now; with ``after`` (epoch s: the newest article a producer delivered) also the first
        article the replay published after it, which that producer still owes."""
        wall = time.time()
        if self.status_url is None:
            return self._wall(wall)
        import httpx

        params = {}
        if after is not None:
            params["after"] = dt.datetime.fromtimestamp(after, dt.UTC).isoformat().replace("+00:00", "Z")
        try:
            doc = httpx.get(self.status_url, params=params, timeout=self.timeout).raise_for_status().json()
        except (httpx.HTTPError, ValueError) as exc:
            return self._wall(wall, f"market replay at {self.status_url}: {type(exc).__name__}")
        now = _iso(doc.get("now"))
        if now is None:
            return self._wall(wall, f"market replay at {self.status_url}: no clock in its status")
        market_open = doc.get("market_open")
        return SourceClock(
            now=now,
            speed=float(doc.get("speed") or 1.0),
            replay=True,
            market_open=bool(market_open) if market_open is not None else None,
            next_open=_iso(doc.get("next_open")),
            opened=_iso(doc.get("session_open")),
            newest_article=_iso(doc.get("newest_article")),
            next_article=_iso(doc.get("next_article")),
            wall=wall,
        )

    @staticmethod
    def _wall(now: float, error: str = "") -> SourceClock:
        market_open, at = nyse_session(now)
        return SourceClock(
            now=now,
            market_open=market_open,
            next_open=None if market_open else at,
            opened=at if market_open else None,
            error=error,
        )
