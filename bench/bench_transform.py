"""Transform benchmarks (issue #7), each a ratio against a baseline measured in the same run:

* ``transform.loader_rows_per_s``: rtfin's loader (consume JSON from Kafka, validate, batch insert
  through clickhouse-connect, commit) rows/s vs. ONE bulk clickhouse-connect insert of the same rows
  (already converted) into the same local ClickHouse endpoint. Paired rule (``bench.paired.alternate``):
  each round of each side in a fresh interpreter, 3 alternating rounds, medians compared. Goal >= 0.8.
* ``transform.dbt_build_s``: `dbt build --full-refresh` (all models + tests) over 1M bars and
  100k articles (80k scored), vs. the same build over 1% of that data (the fixed dbt overhead),
  after a warm-up build.

Services (Kafka, the chDB HTTP endpoint) start on free ports in a temp dir. Sizes: RTFIN_BENCH_LOADER_ROWS
(default 100000), RTFIN_BENCH_BARS (1000000), RTFIN_BENCH_ARTICLES (100000). RTFIN_BENCH_TRANSFORM_DBT=0 skips
the dbt part (while iterating on the loader); by default both run.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import Result, paired

ROOT = Path(__file__).resolve().parents[1]
ROUNDS = 3  # alternating rounds of each side (bench.paired.alternate): the medians are compared


def _bars_sql(raw: str, n: int) -> str:
    # 100 tickers x n/100 consecutive minutes ending now; deterministic prices.
    return (
        f"INSERT INTO {raw}.stock_aggs (ev, sym, s, e, o, h, l, c, v, vw, av, a, z, otc, ingested_at) "
        "SELECT 'AM', concat('T', leftPad(toString(number % 100), 3, '0')) AS sym, "
        "toInt64(toUnixTimestamp(now()) * 1000 - intDiv(number, 100) * 60000) AS s, s + 60000, "
        "100 + (number % 97), 101 + (number % 97), 99 + (number % 97), 100.5 + (number % 97), "
        "toFloat64(1000 + number % 500), 100.2, toFloat64(number), 100.1, 10, false, now64(3) "
        f"FROM numbers({n})"
    )


def _news_sql(raw: str, n: int) -> list[str]:
    pub = "now64(3) - toIntervalSecond(number * 5)"
    return [
        f"INSERT INTO {raw}.news (id, published_utc, title, publisher, tickers, keywords, ingested_at) "
        f"SELECT concat('a', toString(number)), {pub}, concat('Headline ', toString(number)), "
        "('Wire', '', '', ''), arrayMap(i -> concat('T', leftPad(toString((number + i * 7) % 100), 3, '0')), "
        f"range(1 + number % 3)), ['markets'], now64(3) FROM numbers({n})",
        f"INSERT INTO {raw}.news_sentiment (id, published_utc, title, tickers, label, score, sentiment, "
        f"model, scored_at) SELECT concat('a', toString(number)), {pub}, '', [], "
        "['positive', 'negative', 'neutral'][1 + number % 3], 0.9, [0.8, -0.8, 0.0][1 + number % 3], "
        "'m', now64(3) "
        f"FROM numbers({n}) WHERE number % 5 != 0",
    ]


def _settings(side: dict[str, Any]) -> Any:
    """The bench's settings (the run's and each side process's): its broker, its endpoint, 50k-row batches."""
    from pydantic import SecretStr

    from rtfin_cli.settings import RtfinSettings

    return RtfinSettings(
        kafka={"bootstrap": side["bootstrap"], "topics": {"partitions": 3}},
        clickhouse={
            "port": side["port"],
            "password": SecretStr(side["password"]),
            "loader_batch_rows": 50000,
        },
        local={"data_dir": side["data_dir"]},
    )


def _cpu_s(side: dict[str, Any]) -> dict[str, float]:
    """CPU seconds used so far by this process, the broker's and the endpoint's process groups: a round's
    difference shows what the rows cost on the machine's cores, whatever the wall time."""
    from bench.bench_freshness import group_cpu_s

    return {"self": time.process_time(), "broker": group_cpu_s(side["broker_pid"]),
            "endpoint": group_cpu_s(side["endpoint_pid"])}  # fmt: skip


def _cpu_used(before: dict[str, float], side: dict[str, Any]) -> dict[str, float]:
    """CPU seconds per process since ``before``, and their total."""
    used = {k: round(v - before[k], 3) for k, v in _cpu_s(side).items()}
    return used | {"total": round(sum(used.values()), 3)}


def loader_side(cfg: str, **_: Any) -> dict[str, Any]:
    """One loader round (fresh process): every record of the topic consumed, validated, inserted, committed by
    a new consumer group into an emptied table. Busy time: first record consumed to last commit."""
    import uuid

    from rtfin_cli.warehouse.client import get_client
    from rtfin_cli.warehouse.loader import Loader

    side = json.loads(Path(cfg).read_text())
    s = _settings(side)
    get_client(s).command("TRUNCATE TABLE rtfin_raw.stock_aggs")
    cpu = _cpu_s(side)
    stats = Loader(s, batch_s=1.0, group=f"rtfin-loader-bench-{uuid.uuid4().hex[:8]}").run(
        once=True, timeout_s=600
    )
    rows = len(side["values"])
    assert stats.inserted["stock_aggs"] == rows, stats.as_dict()
    return {"rows_per_s": rows / stats.busy_s, "busy_s": round(stats.busy_s, 3), "batches": stats.batches,
            "total_s_incl_group_join": round(stats.elapsed_s, 2),
            "cpu_s_incl_group_join": _cpu_used(cpu, side)}  # fmt: skip


def bulk_side(cfg: str, **_: Any) -> dict[str, Any]:
    """One baseline round (fresh process): the same rows, converted before the clock starts, in one
    clickhouse-connect insert into an empty copy of the table."""
    from clickhouse_connect.driver import options

    from rtfin_cli.warehouse.client import get_client
    from rtfin_cli.warehouse.records import columns, to_row

    side = json.loads(Path(cfg).read_text())
    client = get_client(_settings(side))
    rows = [to_row("stock_aggs", v) for v in side["values"]]
    client.command("DROP TABLE IF EXISTS rtfin_raw.bulk")
    client.command("CREATE TABLE rtfin_raw.bulk AS rtfin_raw.stock_aggs")
    getattr(options, "pd", None)  # its lazy pandas probe, done before the clock starts (as the loader does)
    cpu, t0 = _cpu_s(side), time.perf_counter()
    client.insert("rtfin_raw.bulk", rows, column_names=columns("stock_aggs"))
    seconds = time.perf_counter() - t0
    used = _cpu_used(cpu, side)
    assert client.command("SELECT count() FROM rtfin_raw.bulk") == len(rows)
    return {"rows_per_s": len(rows) / seconds, "seconds": round(seconds, 3), "cpu_s": used}


def _cpu_floor(rounds: list[dict[str, Any]]) -> dict[str, float]:
    """The ratio the loader's CPU would allow with every core busy all the time: a round cannot take less
    than its CPU seconds (loader, broker, endpoint) over the cores. Those seconds include the group join,
    which the measured busy time does not, so ``best_ratio`` understates the bound: it shows the order."""
    import statistics

    loader = statistics.median(r["cpu_s_incl_group_join"]["total"] for r in rounds if r["side"] == "value")
    bulk = statistics.median(r["seconds"] for r in rounds if r["side"] == "baseline")
    cores = os.cpu_count() or 1
    return {"loader_cpu_s": loader, "cores": cores, "bulk_wall_s": bulk,
            "best_ratio": round(bulk / (loader / cores), 3)}  # fmt: skip


def run() -> list[Result]:
    from confluent_kafka import Producer

    from rtfin_cli.kafka.admin import create_topics
    from rtfin_cli.local.clickhouse import ClickHouseServer
    from rtfin_cli.local.kafka import KafkaBroker
    from rtfin_cli.local.supervisor import free_port
    from rtfin_cli.transform.dbt import invoke
    from rtfin_cli.warehouse import ddl
    from rtfin_cli.warehouse.client import get_client
    from tests.integration.transform.gen import generate

    n_load = int(os.environ.get("RTFIN_BENCH_LOADER_ROWS", "100000"))
    n_bars = int(os.environ.get("RTFIN_BENCH_BARS", "1000000"))
    n_articles = int(os.environ.get("RTFIN_BENCH_ARTICLES", "100000"))
    tmp = Path(tempfile.mkdtemp(prefix="rtfin-bench-transform-"))
    broker = KafkaBroker(data_dir=tmp / "kafka", cache_dir=ROOT / ".cache", port=free_port(),
                         controller_port=free_port())  # fmt: skip
    server = ClickHouseServer(data_dir=tmp / "ch", port=free_port())
    server.password = server.credentials()[1]
    broker.start(timeout=180)
    server.start(timeout=120)
    results: list[Result] = []
    try:
        side = {"bootstrap": broker.bootstrap, "port": server.port, "password": server.password,
                "data_dir": str(tmp / "rtfin"), "broker_pid": broker.service.pid(),
                "endpoint_pid": server.service.pid()}  # fmt: skip
        s = _settings(side)
        client = get_client(s)
        ddl.apply(s.clickhouse, client)
        create_topics(s.kafka)

        # -- loader vs one bulk insert ---------------------------------------------------------------
        bars_per_ticker = max(1, n_load // 100)
        data = generate(seed=1, articles=0, tickers=100, minutes=bars_per_ticker, second_bars=0)
        msgs = data.messages()["stocks_aggs"][:n_load]
        p = Producer({"bootstrap.servers": broker.bootstrap, "linger.ms": 50, "compression.type": "lz4"})
        for key, value in msgs:
            while True:
                try:
                    p.produce(s.kafka.topics.stocks_aggs, key=key.encode(), value=value)
                    break
                except BufferError:
                    p.poll(0.05)
        assert p.flush(120) == 0
        cfg = tmp / "side.json"  # what each side's process needs (the password stays in this 0600 file)
        cfg.touch(mode=0o600)
        cfg.write_text(json.dumps({**side, "values": [v.decode() for _, v in msgs]}))
        loader_rps, bulk_rps, seen = paired.alternate(
            "bench.bench_transform:loader_side", "bench.bench_transform:bulk_side", "rows_per_s",
            rounds=ROUNDS, cfg=str(cfg),
        )  # fmt: skip
        results.append(
            Result(
                "transform.loader_rows_per_s",
                loader_rps,
                "rows/s",
                bulk_rps,
                "one bulk clickhouse-connect insert",
                ">= 0.8 (median of 3 alternating fresh-process rounds)",
                {"rows": len(msgs), "rounds": seen, "cpu_floor": _cpu_floor(seen)},
                goal=0.8,
            )  # fmt: skip
        )

        # -- dbt build at 1M bars / 100k articles vs 1% of it ------------------------------------------
        if os.environ.get("RTFIN_BENCH_TRANSFORM_DBT", "1") == "0":
            return results

        def build(bars: int, articles: int) -> float:
            for t in ("news", "stock_aggs", "news_sentiment"):
                client.command(f"TRUNCATE TABLE rtfin_raw.{t}")
            client.command(_bars_sql("rtfin_raw", bars))
            for stmt in _news_sql("rtfin_raw", articles):
                client.command(stmt)
            out = invoke(s, "build", full_refresh=True)
            assert out.success, (out.error, [n for n in out.nodes if n.status not in ("success", "pass")])
            return out.seconds

        build(max(100, n_bars // 100), max(10, n_articles // 100))  # warm-up (first parse, first tables)
        big = build(n_bars, n_articles)
        small = build(max(100, n_bars // 100), max(10, n_articles // 100))
        results.append(
            Result(
                "transform.dbt_build_s",
                big,
                "s",
                small,
                "dbt build over 1% of the data",
                "report",
                {"bars": n_bars, "articles": n_articles},
            )  # fmt: skip
        )
    finally:
        server.stop()
        broker.stop()
    return results
