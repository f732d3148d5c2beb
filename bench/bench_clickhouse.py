"""The local ClickHouse endpoint vs. chDB in-process, same data, same run.

* insert: a 1M-row DataFrame through clickhouse-connect ``insert_df`` (Native, encoded in Python) and
  ``insert_arrow`` (Arrow) over HTTP, vs. ``INSERT INTO t SELECT * FROM Python(df)`` in an in-process
  chDB session.
* select: 1M rows into a DataFrame / Arrow table through clickhouse-connect (``query_df``,
  ``query_df_arrow``, ``query_arrow``) vs. the same query in-process (``DataFrame`` / ``ArrowTable``), and
  the raw Native byte stream (the server's own overhead, no client decoding) vs. in-process send_query.
* start: ``ClickHouseServer.start()`` (what `rtfin local clickhouse start` waits for) vs. ``python -c
  'import chdb'`` (the floor any chDB process pays).

Ratios are rows/s through the server ÷ rows/s in-process; the goal is >= 0.5 for ``insert_df`` and
``query_df``. Paired rule (``bench.paired.alternate``): each round of each side runs in a fresh process (the
server side: a client of the endpoint this run started; the baseline: its own chDB session), 3 alternating
rounds, medians compared; within a round every case is timed once after one untimed warm-up. Each case
runs with clickhouse-connect's default compression (lz4 both ways) and with ``compress=False``.

The server side also times clickhouse-connect's own codec without the network (``client_only_s``: encoding
the DataFrame for ``insert_df``, decoding the endpoint's Native bytes for ``query_df``): in-process rows/s
÷ those rows/s is the ratio an endpoint answering in no time at all would reach (``ceiling``).
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench import Result, paired, timed

ROWS = 1_000_000
DDL = "CREATE TABLE {t} (id UInt64, sym String, px Float64, at DateTime64(3, 'UTC')) ENGINE MergeTree ORDER BY id"  # noqa: E501
SELECT = "SELECT id, sym, px, at FROM {t} ORDER BY id LIMIT 1000000"
# case: (which in-process measurement it is compared with, the baseline's name, whether it has a goal)
CASES = {
    "insert_df": ("insert", "chDB in-process INSERT from Python(df)", True),
    "insert_arrow": ("insert", "chDB in-process INSERT from Python(df)", False),
    "select_query_df": ("df", "in-process -> DataFrame", True),
    "select_query_df_arrow": ("df", "in-process -> DataFrame", False),
    "select_query_arrow": ("arrow", "in-process -> ArrowTable", False),
    "select_native_stream": ("native", "in-process Native bytes", False),
}
GOAL = 0.5


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


def _once(fn: Callable[[], Any]) -> float:
    """Seconds of one call after one untimed warm-up call."""
    fn()
    return timed(fn, 1)


def server_side(cfg: str, compress: bool, **_: Any) -> dict[str, float]:
    """One round through the endpoint (fresh process): rows/s of every case, and the client-only seconds."""
    import clickhouse_connect
    import pyarrow as pa

    side = json.loads(Path(cfg).read_text())
    client = clickhouse_connect.get_client(host=side["host"], port=side["port"], username=side["user"],
                                           password=side["password"], compress=compress)  # fmt: skip
    df, sql, made = _frame(), SELECT.format(t="sel"), []

    def insert(method: str) -> None:
        made.append(t := f"ins_{uuid.uuid4().hex}")
        client.command(DDL.format(t=t))
        if method == "insert_df":
            client.insert_df(t, df)
        else:
            client.insert_arrow(t, pa.Table.from_pandas(df, preserve_index=False))

    cases: dict[str, Callable[[], Any]] = {
        "insert_df": lambda: insert("insert_df"),
        "insert_arrow": lambda: insert("insert_arrow"),
        "select_query_df": lambda: client.query_df(sql),
        "select_query_df_arrow": lambda: client.query_df_arrow(sql),
        "select_query_arrow": lambda: client.query_arrow(sql),
        "select_native_stream": lambda: _drain_stream(client, sql),
    }
    out = {name: ROWS / _once(fn) for name, fn in cases.items()}
    assert [client.command(f"SELECT count() FROM {t}") for t in made] == [ROWS] * len(made)
    for t in made:
        client.command(f"DROP TABLE {t}")
    out.update(_client_only(client, df, sql))
    client.close()
    return out


def _client_only(client: Any, df: Any, sql: str) -> dict[str, float]:
    """clickhouse-connect's own codec, no network: the DataFrame encoded as insert_df sends it, and the
    endpoint's Native answer to ``sql`` decoded as query_df does."""
    from clickhouse_connect.driver.ctypes import RespBuffCls

    native = b"".join(client.raw_stream(sql, fmt="Native"))

    class Bytes:  # a byte source as the HTTP response gives it: 1 MiB pieces
        def __init__(self) -> None:
            self.gen = (native[i : i + (1 << 20)] for i in range(0, len(native), 1 << 20))

        def close(self) -> None:
            pass

    def decode() -> None:
        ctx = client.create_query_context(query=sql, use_numpy=True, as_pandas=True)
        assert len(client._transform.parse_response(RespBuffCls(Bytes()), ctx).df_result) == ROWS

    def encode() -> None:
        ctx = client.create_insert_context("sel", column_names=list(df.columns))
        ctx.data, ctx.compression = df, client.write_compression
        sum(len(b) for b in client._transform.build_insert(ctx))

    return {"client_only_s.select_query_df": _once(decode), "client_only_s.insert_df": _once(encode)}


def local_side(cfg: str, **_: Any) -> dict[str, float]:
    """One round in-process (fresh process, its own chDB session): rows/s of each case's baseline."""
    from chdb import session

    side = json.loads(Path(cfg).read_text())
    df = _frame()  # noqa: F841 - read by name: chDB's Python(df) finds it in its callers' frames
    sql, counter = SELECT.format(t="sel"), iter(range(10**6))  # a new session: its names are free
    sess = session.Session(tempfile.mkdtemp(dir=side["tmp"]))
    try:
        sess.query(DDL.format(t="sel"))
        sess.query("INSERT INTO sel SELECT * FROM Python(df)")

        def insert() -> None:
            t = f"ins_{next(counter)}"
            sess.query(DDL.format(t=t))
            sess.query(f"INSERT INTO {t} SELECT * FROM Python(df)")

        baselines: dict[str, Callable[[], Any]] = {
            "insert": insert,
            "df": lambda: sess.query(sql, "DataFrame"),
            "arrow": lambda: sess.query(sql, "ArrowTable"),
            "native": lambda: _drain_local(sess, sql),
        }
        rps = {key: ROWS / _once(fn) for key, fn in baselines.items()}
        return {name: rps[key] for name, (key, _, _) in CASES.items()}
    finally:
        sess.close()


def run() -> list[Result]:
    from rtfin_cli.local.clickhouse import ClickHouseServer
    from rtfin_cli.local.supervisor import free_port

    results: list[Result] = []
    with tempfile.TemporaryDirectory() as tmp:
        results.append(_cli_start(Path(tmp) / "cli"))
        server = ClickHouseServer(data_dir=Path(tmp) / "srv", port=free_port())
        server.start(timeout=120)
        try:
            user, password = server.credentials()
            cfg = (
                Path(tmp) / "side.json"
            )  # what each side's process needs (the password stays in this 0600 file)
            cfg.touch(mode=0o600)
            cfg.write_text(json.dumps({"host": server.host, "port": server.port, "user": user,
                                       "password": password, "tmp": tmp}))  # fmt: skip
            server.query(DDL.format(t="sel"))
            server.query("INSERT INTO sel SELECT number, ['AAPL', 'MSFT', 'NVDA', 'TSLA'][number % 4 + 1], "
                         f"number / 7, fromUnixTimestamp64Milli(1700000000000 + number) FROM numbers({ROWS})")  # fmt: skip
            for suffix, compress in (("", True), ("_nocompress", False)):
                results += _paired_cases(str(cfg), compress, suffix)
        finally:
            server.stop()
    return results


def _paired_cases(cfg: str, compress: bool, suffix: str) -> list[Result]:
    """Every case through the endpoint against its in-process baseline, under the paired rule."""
    _, _, seen = paired.alternate("bench.bench_clickhouse:server_side", "bench.bench_clickhouse:local_side",
                                  "insert_df", rounds=3, cfg=cfg, compress=compress)  # fmt: skip
    servers = [r for r in seen if r["side"] == "value"]
    locals_ = [r for r in seen if r["side"] == "baseline"]
    out = []
    for name, (_, base_name, has_goal) in CASES.items():
        value = statistics.median(r[name] for r in servers)
        base = statistics.median(r[name] for r in locals_)
        extra: dict[str, Any] = {"rounds": [round(r[name]) for r in servers],
                                 "baseline_rounds": [round(r[name]) for r in locals_]}  # fmt: skip
        client_only = [r[f"client_only_s.{name}"] for r in servers if f"client_only_s.{name}" in r]
        if client_only:
            extra["client_only_s"] = statistics.median(client_only)
            extra["ceiling"] = round(ROWS / extra["client_only_s"] / base, 3)
        target = f"ratio >= {GOAL} (median of 3 alternating fresh-process rounds)" if has_goal else "report"
        out.append(Result(f"clickhouse.{name}{suffix}_rows_per_s", value, "rows/s", base, base_name, target, extra,
                          goal=GOAL if has_goal else None))  # fmt: skip
    return out


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
    return Result("clickhouse.cli_start_s", sorted(times)[1], "s", floor, "python -c 'import chdb'", "< 3 s",
                  goal=3.0, at_most=True)  # fmt: skip


def _drain_stream(client, sql: str) -> int:  # type: ignore[no-untyped-def]
    """Raw Native bytes over HTTP (the server's own overhead, no client decoding)."""
    total = 0
    for chunk in client.raw_stream(sql, fmt="Native"):
        total += len(chunk)
    return total


def _drain_local(sess, sql: str) -> int:  # type: ignore[no-untyped-def]
    total = 0
    for chunk in sess.send_query(sql, "Native"):
        total += len(chunk.bytes())
    return total
