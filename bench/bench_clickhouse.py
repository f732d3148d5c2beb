"""The local ClickHouse endpoint vs. chDB in-process, same data, same run.

* insert: a 1M-row DataFrame through clickhouse-connect ``insert_df`` (Native, encoded in Python) and
  ``insert_df_arrow`` (Arrow) over HTTP with lz4, vs. ``INSERT INTO t SELECT * FROM Python(df)`` in an
  in-process chDB session.
* select: 1M rows into a DataFrame / Arrow table through clickhouse-connect (``query_df``,
  ``query_df_arrow``, ``query_arrow``) vs. the same query in-process (``DataFrame`` / ``ArrowTable``), and
  the raw Native byte stream (the server's own overhead, no client decoding) vs. in-process send_query.
* start: ``ClickHouseServer.start()`` (what `rtfin local clickhouse start` waits for) vs. ``python -c
  'import chdb'`` (the floor any chDB process pays).
Ratios are rows/s through the server ÷ rows/s in-process (target ≥ 0.5); each pair is timed alternately
(median of 3) so both sides see the same load on a shared machine. Each case runs twice: with
clickhouse-connect's default compression (lz4 both ways) and with ``compress=False``.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import Result, timed

ROWS = 1_000_000
DDL = "CREATE TABLE {t} (id UInt64, sym String, px Float64, at DateTime64(3, 'UTC')) ENGINE MergeTree ORDER BY id"  # noqa: E501
IN_INSERT, IN_DF, IN_ARROW = (
    "chDB in-process INSERT from Python(df)",
    "in-process -> DataFrame",
    "in-process -> ArrowTable",
)
SELECT = "SELECT id, sym, px, at FROM {t} ORDER BY id LIMIT 1000000"


def _frame():  # type: ignore[no-untyped-def]
    import numpy as np
    import pandas as pd

    ids = np.arange(ROWS, dtype=np.uint64)
    return pd.DataFrame({
        "id": ids,
        "sym": pd.Series(["AAPL", "MSFT", "NVDA", "TSLA"] * (ROWS // 4)),
        "px": ids.astype(np.float64) / 7,
        "at": pd.to_datetime(1_700_000_000_000 + ids.astype(np.int64), unit="ms", utc=True),
    })  # fmt: skip


def run() -> list[Result]:
    import chdb  # noqa: F401 - warm the import for both sides
    import clickhouse_connect
    from chdb import session

    from rtfin_cli.local.clickhouse import ClickHouseServer
    from rtfin_cli.local.supervisor import free_port

    df = _frame()
    results: list[Result] = []
    with tempfile.TemporaryDirectory() as tmp:
        results.append(_cli_start(Path(tmp) / "cli"))
        server = ClickHouseServer(data_dir=Path(tmp) / "srv", port=free_port())
        server.start(timeout=120)
        sess = session.Session(str(Path(tmp) / "inproc"))
        try:
            user, password = server.credentials()
            sql = SELECT.format(t="sel")
            sess.query(DDL.format(t="sel"))
            sess.query("INSERT INTO sel SELECT * FROM Python(df)")
            counter = iter(range(1000))

            def local_insert() -> None:
                t = f"ins_{next(counter)}"
                sess.query(DDL.format(t=t))
                sess.query(f"INSERT INTO {t} SELECT * FROM Python(df)")

            base = {
                "insert": local_insert,
                "df": lambda: sess.query(sql, "DataFrame"),
                "arrow": lambda: sess.query(sql, "ArrowTable"),
                "native": lambda: _drain_local(sess, sql),
            }
            # clickhouse-connect's default (lz4 both ways), and compress=False (sensible on loopback)
            for suffix, compress in (("", True), ("_nocompress", False)):
                client = clickhouse_connect.get_client(
                    host=server.host, port=server.port, username=user, password=password, compress=compress
                )
                results += _through_server(client, df, sql, base, suffix, counter)
                client.close()
        finally:
            sess.close()
            server.stop()
    return results


def _through_server(  # type: ignore[no-untyped-def]
    client, df, sql: str, base: dict[str, Any], suffix: str, counter: Any
) -> list[Result]:
    import pyarrow as pa

    def insert(method: str) -> None:
        t = f"ins_{next(counter)}"
        client.command(DDL.format(t=t))
        if method == "insert_df":
            client.insert_df(t, df)
        else:
            client.insert_arrow(t, pa.Table.from_pandas(df, preserve_index=False))
        assert client.command(f"SELECT count() FROM {t}") == ROWS

    if not client.command("EXISTS TABLE sel"):
        client.command(DDL.format(t="sel"))
        client.insert_df("sel", df)
    assert len(client.query_df(sql)) == ROWS
    cases = [
        ("insert_df", lambda: insert("insert_df"), "insert", IN_INSERT),
        ("insert_arrow", lambda: insert("insert_arrow"), "insert", IN_INSERT),
        ("select_query_df", lambda: client.query_df(sql), "df", IN_DF),
        ("select_query_df_arrow", lambda: client.query_df_arrow(sql), "df", IN_DF),
        ("select_query_arrow", lambda: client.query_arrow(sql), "arrow", IN_ARROW),
        ("select_native_stream", lambda: _drain_stream(client, sql), "native", "in-process Native bytes"),
    ]
    out = []
    for name, fn, key, base_name in cases:
        t_srv, t_loc = _paired(fn, base[key], 3)
        out.append(Result(f"clickhouse.{name}{suffix}_rows_per_s", ROWS / t_srv, "rows/s", ROWS / t_loc,
                          base_name, "ratio >= 0.5"))  # fmt: skip
    return out


def _paired(fn: Any, baseline: Any, repeat: int) -> tuple[float, float]:
    """Median seconds of fn and of baseline, run alternately so both see the same machine load."""
    a, b = [], []
    for _ in range(repeat):
        b.append(timed(baseline, 1))
        a.append(timed(fn, 1))
    return statistics.median(a), statistics.median(b)


def _cli_start(data_dir: Path) -> Result:
    """`rtfin local clickhouse start` (until it answers queries), then stop; median of 3."""
    import os

    from rtfin_cli.local.supervisor import free_port

    port = str(free_port())
    env = {**os.environ, "RTFIN__LOCAL__DATA_DIR": str(data_dir), "RTFIN__LOCAL__CLICKHOUSE_PORT": port}
    rtfin = [sys.executable, "-m", "rtfin_cli", "local", "clickhouse"]
    times = []
    for _ in range(3):
        t0 = time.perf_counter()
        subprocess.run([*rtfin, "start"], env=env, check=True, capture_output=True)
        times.append(time.perf_counter() - t0)
        subprocess.run([*rtfin, "stop"], env=env, check=True, capture_output=True)
    floor = timed(lambda: subprocess.run([sys.executable, "-c", "import chdb"], check=True), 3)
    return Result("clickhouse.cli_start_s", sorted(times)[1], "s", floor, "python -c 'import chdb'", "< 3 s")


def _drain_stream(client, sql: str) -> int:  # type: ignore[no-untyped-def]
    """Raw Native bytes over HTTP, uncompressed (the server's own overhead, no client decoding)."""
    total = 0
    for chunk in client.raw_stream(sql, fmt="Native"):
        total += len(chunk)
    return total


def _drain_local(sess, sql: str) -> int:  # type: ignore[no-untyped-def]
    total = 0
    for chunk in sess.send_query(sql, "Native"):
        total += len(chunk.bytes())
    return total
