"""`rtfin lag --hops` over 1 M loaded articles (and 1 M scores, 1 M bars) on the local ClickHouse endpoint.

value: the hops queries of one refresh (every pipeline: count + two quantiles pairs each, the sentiment
one joined to raw.news); baseline: the bare aggregate over the same rows (count() per table with the same
window filter), in the same run, alternating, median of 3 rounds. Target: < 1 s.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

from bench import Result

ROWS = 1_000_000
ROUNDS = 3


def _fill(client: object, raw: str, now_ms: int) -> None:
    """1 M rows per raw table, loaded over the last 10 minutes (server-side INSERT ... SELECT)."""
    span = 600_000
    client.command(  # type: ignore[attr-defined]
        f"INSERT INTO {raw}.news (id, published_utc, title, publisher, tickers, keywords, ingested_at, _loaded_at) "
        f"SELECT toString(number), fromUnixTimestamp64Milli(toInt64({now_ms} - {span} + number % {span} - 5000)), "
        f"'t', ('p', '', '', ''), ['AAPL'], [], "
        f"fromUnixTimestamp64Milli(toInt64({now_ms} - {span} + number % {span} - 1000)), "
        f"fromUnixTimestamp64Milli(toInt64({now_ms} - {span} + number % {span})) FROM numbers({ROWS})"
    )
    client.command(  # type: ignore[attr-defined]
        f"INSERT INTO {raw}.news_sentiment (id, published_utc, tickers, label, score, sentiment, scored_at, "
        f"_loaded_at) SELECT toString(number), fromUnixTimestamp64Milli(toInt64({now_ms})), ['AAPL'], 'neutral', "
        f"1, 0, fromUnixTimestamp64Milli(toInt64({now_ms} - {span} + number % {span} - 500)), "
        f"fromUnixTimestamp64Milli(toInt64({now_ms} - {span} + number % {span})) FROM numbers({ROWS})"
    )
    client.command(  # type: ignore[attr-defined]
        f"INSERT INTO {raw}.stock_aggs (ev, sym, s, e, o, h, l, c, v, ingested_at, _loaded_at) "
        f"SELECT 'AM', concat('T', toString(number % 500)), toInt64({now_ms} - 60000 - number), "
        f"toInt64({now_ms} - number % {span} - 2000), 1, 1, 1, 1, 1, "
        f"fromUnixTimestamp64Milli(toInt64({now_ms} - number % {span} - 1000)), "
        f"fromUnixTimestamp64Milli(toInt64({now_ms} - number % {span})) FROM numbers({ROWS})"
    )


def run() -> list[Result]:
    from rtfin_cli.lag.hops import read_hops
    from rtfin_cli.lag.source import SourceClock
    from rtfin_cli.local.clickhouse import ClickHouseServer
    from rtfin_cli.local.supervisor import free_port
    from rtfin_cli.settings import ClickHouseSettings
    from rtfin_cli.warehouse.client import get_client
    from rtfin_cli.warehouse.ddl import apply

    with tempfile.TemporaryDirectory(prefix="bench-hops-") as tmp:
        server = ClickHouseServer(data_dir=Path(tmp) / "srv", port=free_port())
        server.start(timeout=120)
        try:
            from pydantic import SecretStr

            user, password = server.credentials()
            ch = ClickHouseSettings(host="127.0.0.1", port=server.port, user=user, password=SecretStr(password),
                                    raw_database="bench_hops")  # fmt: skip
            apply(ch)
            client = get_client(ch)
            now = time.time()
            _fill(client, ch.raw_database, int(now * 1000))
            window = 3600.0
            since = f"fromUnixTimestamp64Milli(toInt64({(now - window) * 1000:.0f}), 'UTC')"
            tables = ("news", "news_sentiment", "stock_aggs")

            def hops() -> None:
                got = read_hops(client, ch.raw_database, window, now, SourceClock(now=now))
                assert all(h.rows == ROWS for h in got), got

            def bare() -> None:
                for t in tables:
                    client.query(f"SELECT count() FROM {ch.raw_database}.{t} WHERE _loaded_at >= {since}")

            hops(), bare()  # warm both
            t_hops, t_bare = [], []
            for _ in range(ROUNDS):  # alternating, so both see the same load on a shared machine
                for fn, out in ((hops, t_hops), (bare, t_bare)):
                    t0 = time.perf_counter()
                    fn()
                    out.append(time.perf_counter() - t0)
        finally:
            server.stop()
    return [
        Result(
            "lag.hops_1m_rows_s",
            statistics.median(t_hops),
            "s",
            statistics.median(t_bare),
            "bare count() per raw table, same window",
            "< 1 s",
            {"rows_per_table": ROWS, "rounds": ROUNDS},
        )  # fmt: skip
    ]
