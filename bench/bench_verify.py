"""`rtfin verify` benchmark, a ratio against a baseline measured in the same run:

* ``verify.stock_aggs_s``: `rtfin verify --topic <stocks>` (in process: Kafka watermarks and the group's
  committed offsets, then ClickHouse's distinct offsets, gaps by window function, duplicates after FINAL
  and the fct_stock_bars check) over 1M rows in 9 partitions, vs a bare ``count()`` per partition of the
  same table; the median of five alternating rounds of each. Target: verify < 5 s.

The rows are inserted by SQL (positions 0..111110 per partition, one identity each) and the loader group's
offsets are committed at each partition's end, so every offset is present and nothing is read back from
Kafka (the absent-offset path costs one Kafka read per absent range; it is exercised by the integration
tests, not timed here). fct_stock_bars is created from the raw table as dbt would build it.
Services (Kafka, the chDB HTTP endpoint) start on free ports in a temp dir. Size: RTFIN_BENCH_VERIFY_ROWS
(default 1000000).
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import Result

ROOT = Path(__file__).resolve().parents[1]
ROUNDS = 5
PARTITIONS = 9


def _rows_sql(raw: str, topic: str, n: int) -> str:
    return (
        f"INSERT INTO {raw}.stock_aggs (ev, sym, s, e, o, h, l, c, v, ingested_at, _topic, _partition, _offset) "
        "SELECT 'AM', concat('T', leftPad(toString(number % 100), 3, '0')), "
        "toInt64(1700000000000 + intDiv(number, 100) * 60000) AS s, s + 60000, 1, 1, 1, 1, 1, now64(3), "
        f"'{topic}', toInt32(number % {PARTITIONS}), toInt64(intDiv(number, {PARTITIONS})) FROM numbers({n})"
    )


def _commit(s: Any, topic: str, ends: dict[int, int]) -> None:
    from confluent_kafka import KafkaException, TopicPartition

    from rtfin_cli.kafka.clients import consumer

    c = consumer(s.kafka, s.clickhouse.loader_group)
    try:
        for attempt in range(30):  # a fresh broker answers "coordinator load in progress" for a while
            try:
                c.commit(offsets=[TopicPartition(topic, p, o) for p, o in ends.items()], asynchronous=False)
                return
            except KafkaException:
                if attempt == 29:
                    raise
                time.sleep(1)
    finally:
        c.close()


def run() -> list[Result]:
    from pydantic import SecretStr

    from rtfin_cli.kafka.admin import create_topics
    from rtfin_cli.local.clickhouse import ClickHouseServer
    from rtfin_cli.local.kafka import KafkaBroker
    from rtfin_cli.local.supervisor import free_port
    from rtfin_cli.settings import RtfinSettings
    from rtfin_cli.warehouse import ddl
    from rtfin_cli.warehouse.client import get_client
    from rtfin_cli.warehouse.verify import verify

    n = int(os.environ.get("RTFIN_BENCH_VERIFY_ROWS", "1000000"))
    tmp = Path(tempfile.mkdtemp(prefix="rtfin-bench-verify-"))
    broker = KafkaBroker(data_dir=tmp / "kafka", cache_dir=ROOT / ".cache", port=free_port(),
                         controller_port=free_port())  # fmt: skip
    server = ClickHouseServer(data_dir=tmp / "ch", port=free_port())
    server.password = server.credentials()[1]
    broker.start(timeout=180)
    server.start(timeout=120)
    try:
        s = RtfinSettings(
            kafka={"bootstrap": broker.bootstrap, "topics": {"partitions": PARTITIONS}},
            clickhouse={"port": server.port, "password": SecretStr(server.password)},
            local={"data_dir": str(tmp / "rtfin")},
        )
        client = get_client(s)
        ddl.apply(s.clickhouse, client)
        create_topics(s.kafka)
        raw, db, topic = s.clickhouse.raw_database, s.clickhouse.database, s.kafka.topics.stocks_aggs
        client.command(_rows_sql(raw, topic, n))
        client.command(f"CREATE DATABASE IF NOT EXISTS {db}")
        client.command(
            f"CREATE TABLE {db}.fct_stock_bars ENGINE = ReplacingMergeTree ORDER BY (sym, ev, bar_start) AS "
            f"SELECT sym, ev, fromUnixTimestamp64Milli(s, 'UTC') AS bar_start, _loaded_at AS loaded_at "
            f"FROM {raw}.stock_aggs FINAL"
        )
        ends = {p: len(range(p, n, PARTITIONS)) for p in range(PARTITIONS)}
        _commit(s, topic, ends)

        def counts() -> None:
            client.query(f"SELECT _partition, count() FROM {raw}.stock_aggs GROUP BY _partition")

        verify_s, count_s = [], []
        for _ in range(ROUNDS):
            t0 = time.perf_counter()
            report = verify(s, [topic], client=client)
            verify_s.append(time.perf_counter() - t0)
            assert report.ok, report.as_dict()
            assert sum(p.present for p in report.partitions) == n and len(report.partitions) == PARTITIONS
            assert report.marts[0].built is not None
            t0 = time.perf_counter()
            counts()
            count_s.append(time.perf_counter() - t0)
        return [
            Result(
                "verify.stock_aggs_s",
                statistics.median(verify_s),
                "s",
                statistics.median(count_s),
                "SELECT count() per partition of the same table",
                "< 5 s",
                {
                    "rows": n,
                    "partitions": PARTITIONS,
                    "rounds_verify_s": [round(x, 3) for x in verify_s],
                    "rounds_count_s": [round(x, 4) for x in count_s],
                },
            )  # fmt: skip
        ]
    finally:
        server.stop()
        broker.stop()
