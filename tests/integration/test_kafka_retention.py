"""Retention of the local broker with the replay's future event times: the size bound still deletes.

Kafka never deletes a segment holding a timestamp ahead of the wall clock by time; the replay (speed 60)
stamps its records hours ahead, so a long-running demo kept every segment. The local broker bounds each
partition's size (log.retention.bytes) and checks every minute; the topic here uses the same mechanism
with small numbers so the test takes one retention check.
"""

from __future__ import annotations

import os
import time
import uuid
from typing import Any

import pytest

from rtfin_cli.local.supervisor import wait_for


@pytest.mark.slow
def test_segments_with_future_timestamps_are_deleted_by_size(kafka_settings: Any) -> None:
    from confluent_kafka import TopicPartition
    from confluent_kafka.admin import NewTopic, OffsetSpec

    from rtfin_cli.kafka.clients import admin, producer

    a = admin(kafka_settings)
    cfg = {"segment.bytes": str(1 << 20), "retention.ms": "1000"}
    by_time, by_size = (f"ret-{kind}.{uuid.uuid4().hex[:8]}" for kind in ("time", "size"))
    for topic, extra in ((by_time, {}), (by_size, {"retention.bytes": str(2 << 20)})):
        a.create_topics([NewTopic(topic, 1, 1, config={**cfg, **extra})])[topic].result(30)
    future = int((time.time() + 10 * 86400) * 1000)  # what the replay does to event times, exaggerated
    p = producer(kafka_settings, **{"linger.ms": 20})
    for topic in (by_time, by_size):
        for i in range(8000):  # ~11 MB of incompressible values: about ten 1 MiB segments
            p.produce(topic, key=str(i), value=os.urandom(700).hex(), timestamp=future + i)
    assert p.flush(60) == 0

    def start(topic: str) -> int:
        tp = TopicPartition(topic, 0)
        return int(a.list_offsets({tp: OffsetSpec.earliest()})[tp].result(30).offset)

    assert wait_for(lambda: start(by_size) > 4000, 150, 5), "the size bound deleted nothing"
    assert start(by_time) == 0  # time retention alone keeps every future-stamped segment
