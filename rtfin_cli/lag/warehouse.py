"""Warehouse freshness: data age = now − newest event time in each raw table and reporting model.

Read through clickhouse-connect. A missing database/table/column is a row with state MISSING; an
unreachable server is a :class:`Freshness` with ``status="unreachable"`` — never an exception out of
:meth:`FreshnessProbe.read`.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from typing import TYPE_CHECKING, Any

from rtfin_cli.lag.model import IDLE, MISSING, OK, UNREACHABLE, Freshness, TableAge

if TYPE_CHECKING:
    from rtfin_cli.settings import ClickHouseSettings

# (which database setting, table, candidate event-time columns in order of preference)
RAW_TABLES: list[tuple[str, str, tuple[str, ...]]] = [
    ("raw", "news", ("published_utc",)),
    ("raw", "stock_aggs", ("e", "s")),
    ("raw", "news_sentiment", ("scored_at", "published_utc")),
]
MODELS: list[tuple[str, str, tuple[str, ...]]] = [
    ("models", "rpt_latest_news", ("published_at", "scored_at")),
    ("models", "rpt_trending_tickers_7d", ("last_article_at",)),
    ("models", "rpt_intraday_price", ("bar_end", "bar_start")),
    ("models", "rpt_intraday_volume", ("bar_end", "bar_start")),
]


def to_epoch(value: Any) -> float | None:
    """A max() result as epoch seconds: DateTime(64) (naive = UTC) or an epoch integer (s or ms)."""
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.UTC)
        seconds = value.timestamp()
    elif isinstance(value, dt.date):
        seconds = dt.datetime(value.year, value.month, value.day, tzinfo=dt.UTC).timestamp()
    elif isinstance(value, int | float):
        seconds = value / 1000.0 if value > 1e11 else float(value)
    else:
        return None
    return seconds if seconds > 0 else None  # the epoch itself is ClickHouse's "no rows" default


class FreshnessProbe:
    """Newest event time per table; keeps one client and rebuilds it after a failure."""

    def __init__(self, ch: ClickHouseSettings, timeout: float | None = None) -> None:
        self.ch = ch
        self.timeout = timeout if timeout is not None else min(ch.connect_timeout_s, 3.0)
        self._client: Any = None

    @property
    def endpoint(self) -> str:
        return f"{'https' if self.ch.secure else 'http'}://{self.ch.host}:{self.ch.port}"

    def _connect(self) -> Any:
        if self._client is None:
            from rtfin_cli.warehouse.client import get_client

            self._client = get_client(
                self.ch, connect_timeout=self.timeout, send_receive_timeout=max(self.timeout, 5.0)
            )
        return self._client

    def client(self) -> Any:
        """The clickhouse-connect client (connected on first use); ``read`` drops it after a failure."""
        return self._connect()

    def read(self, now: float, speed: float = 1.0) -> Freshness:
        """The data age of every table, or why the warehouse could not be asked. ``now`` is the event clock
        and ``speed`` its event seconds per wall second: ages are wall seconds, negative ahead of it."""
        dbs = {"raw": self.ch.raw_database, "models": self.ch.database}
        specs = [(dbs[which], table, cols) for which, table, cols in RAW_TABLES + MODELS]
        try:
            client = self._connect()
            rows = client.query(
                "SELECT database, table, name FROM system.columns WHERE database IN %(dbs)s",
                parameters={"dbs": tuple(dbs.values())},
            ).result_rows
        except Exception as exc:  # noqa: BLE001 - any failure to connect/query is "unreachable"
            self._client = None
            return Freshness("unreachable", self.endpoint, _first_line(exc))
        columns: dict[tuple[str, str], set[str]] = {}
        for db, table, name in rows:
            columns.setdefault((db, table), set()).add(name)
        tables = [self._age(client, db, table, cols, columns, now, speed) for db, table, cols in specs]
        return Freshness("ok", self.endpoint, tables=tables)

    def _age(
        self,
        client: Any,
        db: str,
        table: str,
        candidates: tuple[str, ...],
        columns: dict[tuple[str, str], set[str]],
        now: float,
        speed: float,
    ) -> TableAge:
        have = columns.get((db, table))
        if have is None:
            return TableAge(db, table, candidates[0], MISSING, detail=f"{db}.{table} does not exist")
        column = next((c for c in candidates if c in have), None)
        if column is None:
            return TableAge(db, table, candidates[0], MISSING, detail=f"no column {' / '.join(candidates)}")
        try:
            newest_raw, count = client.query(
                f"SELECT max(`{column}`), count() FROM `{db}`.`{table}`"
            ).result_rows[0]
        except Exception as exc:  # noqa: BLE001
            return TableAge(db, table, column, UNREACHABLE, detail=_first_line(exc))
        newest = to_epoch(newest_raw) if count else None
        if newest is None:
            return TableAge(db, table, column, IDLE, rows=int(count), detail="no rows yet")
        age = round((now - newest) / speed, 3)
        return TableAge(db, table, column, OK, rows=int(count), newest=newest, age_s=age)

    def close(self) -> None:
        if self._client is not None:
            with contextlib.suppress(Exception):
                self._client.close()
            self._client = None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return (text.splitlines()[0] if text else type(exc).__name__)[:200]
