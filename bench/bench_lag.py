"""`rtfin lag`: one snapshot of 10 consumer groups × 100 partitions (every partition behind, so each
needs a time-lag read) on a local broker, vs. the bare offset calls any lag tool must make in the same run
(list_consumer_group_offsets per group + one batched ListOffsets for the 1000 end offsets)."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

from bench import Result, timed

GROUPS, PARTITIONS, PER_PARTITION = 10, 100, 10


def _setup(bootstrap: str) -> list[str]:
    from confluent_kafka import ConsumerGroupTopicPartitions, TopicPartition
    from confluent_kafka.admin import NewTopic

    from rtfin_cli.kafka.clients import admin, producer
    from rtfin_cli.local.supervisor import wait_for
    from rtfin_cli.settings import KafkaSettings

    k = KafkaSettings(bootstrap=bootstrap)
    a = admin(k)
    topics = [f"bench.lag.{i}" for i in range(GROUPS)]
    for fut in a.create_topics([NewTopic(t, PARTITIONS, 1) for t in topics]).values():
        fut.result(timeout=60)
    p = producer(k, **{"linger.ms": 5})
    now_ms = int(time.time() * 1000)
    for t in topics:
        for part in range(PARTITIONS):
            for n in range(PER_PARTITION):
                p.produce(t, value=b"x" * 100, partition=part, timestamp=now_ms - (PER_PARTITION - n) * 1000)
        p.poll(0)
    p.flush(60)
    groups = []
    for i, t in enumerate(topics):  # every partition of every group is behind: 1000 time-lag reads
        g = f"bench-lag-group-{i}"
        offsets = [TopicPartition(t, part, part % (PER_PARTITION - 1)) for part in range(PARTITIONS)]
        req = [ConsumerGroupTopicPartitions(g, offsets)]
        # the first group request creates __consumer_offsets: allow a slow, loaded machine to catch up
        if not wait_for(lambda req=req, g=g: _committed(a, req, g), 180, 1):
            raise RuntimeError(f"cannot commit offsets for {g}")
        groups.append(g)
    return groups


def _committed(client: Any, req: list[Any], group: str) -> bool:
    """True when every offset was stored (a broker still loading __consumer_offsets answers per-partition errors)."""
    res = client.alter_consumer_group_offsets(req, request_timeout=30)[group].result(35)
    return all(tp.error is None for tp in res.topic_partitions)


def run() -> list[Result]:
    from confluent_kafka import ConsumerGroupTopicPartitions, TopicPartition
    from confluent_kafka.admin import OffsetSpec  # type: ignore[attr-defined]

    from rtfin_cli.kafka.clients import admin, consumer
    from rtfin_cli.lag.snapshot import Monitor, Options
    from rtfin_cli.local.kafka import KafkaBroker
    from rtfin_cli.local.supervisor import free_port, wait_for
    from rtfin_cli.settings import RtfinSettings

    root = Path(__file__).resolve().parents[1]
    with tempfile.TemporaryDirectory(prefix="bench-lag-") as tmp:
        broker = KafkaBroker(Path(tmp), root / ".cache", port=free_port(), controller_port=free_port())
        broker.start(timeout=120)
        try:
            groups = _setup(broker.bootstrap)
            s = RtfinSettings(kafka={"bootstrap": broker.bootstrap})  # type: ignore[arg-type]
            opts = Options(groups=groups, pipeline=False)

            def cold() -> None:  # fresh clients, empty timestamp cache: the first `rtfin lag --once`
                m = Monitor(s, opts)
                snap = m.snapshot()
                m.close()
                assert snap.kafka["status"] == "ok", snap.kafka
                assert len(snap.groups) == GROUPS and all(
                    len(g.partitions) == PARTITIONS for g in snap.groups
                )
                assert all(p.time_lag_s > 0 for g in snap.groups for p in g.partitions), (
                    "a time lag is missing"
                )

            wait_for(lambda: Monitor(s, opts).snapshot().kafka["status"] == "ok", 60)

            live = Monitor(s, opts)
            live.snapshot()

            def warm() -> None:  # a live-view refresh: clients connected, unchanged commits cached
                live.snapshot()

            a = admin(s.kafka)
            tps = [TopicPartition(f"bench.lag.{i}", p) for i in range(GROUPS) for p in range(PARTITIONS)]

            def bare() -> None:
                futs = [a.list_consumer_group_offsets([ConsumerGroupTopicPartitions(g)])[g] for g in groups]
                ends = a.list_offsets({tp: OffsetSpec.latest() for tp in tps})  # type: ignore[no-untyped-call]
                [f.result() for f in futs]
                [f.result() for f in ends.values()]

            c = consumer(s.kafka, group="bench-lag-naive")

            def naive() -> None:  # what a simple tool does: one watermark request per partition
                for tp in tps:
                    c.get_watermark_offsets(tp, timeout=10)

            bare()
            t_cold, t_warm, t_bare, t_naive = timed(cold, 5), timed(warm, 5), timed(bare, 5), timed(naive, 3)
            live.close()
            c.close()
        finally:
            broker.stop()
    size = {"groups": GROUPS, "partitions_per_group": PARTITIONS, "time_lag_reads": GROUPS * PARTITIONS}
    return [
        Result(
            "lag.snapshot_10x100_cold_s",
            t_cold,
            "s",
            t_bare,
            "bare group offsets + end offsets",
            "< 1 s",
            size,
        ),
        Result(
            "lag.snapshot_10x100_live_s",
            t_warm,
            "s",
            t_bare,
            "bare group offsets + end offsets",
            "< 1 s",
            size,
        ),
        Result(
            "lag.naive_watermarks_1000_s", t_naive, "s", t_bare, "bare group offsets + end offsets", "", size
        ),
    ]
