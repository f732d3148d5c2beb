"""confluent-kafka clients built from KafkaSettings (created lazily, one config path)."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from rtfin_cli.errors import ServiceUnavailable

# librdkafka's own log lines go to this logger (not raw to stderr); WARNING and up by default.
KAFKA_LOGGER = logging.getLogger("rtfin.kafka.client")
KAFKA_LOGGER.addHandler(logging.NullHandler())  # errors surface through RtfinError, not raw client logs

if TYPE_CHECKING:
    from confluent_kafka import Consumer, Producer
    from confluent_kafka.admin import AdminClient

    from rtfin_cli.settings import KafkaSettings


def admin(kafka: KafkaSettings, **overrides: Any) -> AdminClient:
    from confluent_kafka.admin import AdminClient

    conf: dict[str, Any] = {**kafka.client_config(), "logger": KAFKA_LOGGER, **overrides}
    return AdminClient(conf)


def producer(kafka: KafkaSettings, **overrides: Any) -> Producer:
    """An idempotent, acks=all, compressed, batching producer."""
    from confluent_kafka import Producer

    conf = {
        **kafka.client_config(),
        "enable.idempotence": True,
        "acks": "all",
        "compression.type": kafka.compression,
        "linger.ms": kafka.linger_ms,
        "logger": KAFKA_LOGGER,
        **overrides,
    }
    return Producer(conf)


def consumer(kafka: KafkaSettings, group: str, **overrides: Any) -> Consumer:
    from confluent_kafka import Consumer

    conf = {
        **kafka.client_config(),
        "group.id": group,
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
        "logger": KAFKA_LOGGER,
        **overrides,
    }
    return Consumer(conf)


def check_reachable(kafka: KafkaSettings, timeout: float | None = None) -> Any:
    """Cluster metadata, or ServiceUnavailable naming the bootstrap servers."""
    from confluent_kafka import KafkaException

    client = admin(kafka)
    try:
        return client.list_topics(timeout=timeout or kafka.timeout_s)
    except KafkaException as exc:
        raise ServiceUnavailable(
            f"Kafka at {kafka.bootstrap} is unreachable ({exc.args[0].str() if exc.args else exc})",
            "Start it with `rtfin local kafka start` or check kafka.bootstrap / security settings.",
        ) from None


def read_range(
    c: Any,
    topic: str,
    begin: dict[int, int],
    end: dict[int, int],
    deadline_s: float,
    strict: bool = True,
) -> Iterator[Any]:
    """The messages in [begin, end) of each partition of ``topic`` (an assigned, group-less read), until every
    partition is read or ``deadline_s`` passes. A consumer error raises when ``strict``, else is skipped."""
    from confluent_kafka import KafkaError, TopicPartition

    todo = {p for p in begin if begin[p] < end.get(p, 0)}
    if not todo:
        return
    c.assign([TopicPartition(topic, p, begin[p]) for p in todo])
    deadline = time.monotonic() + deadline_s
    while todo and time.monotonic() < deadline:
        for msg in c.consume(num_messages=5000, timeout=1.0):
            p = msg.partition()
            if msg.error():
                if msg.error().code() == KafkaError._PARTITION_EOF:
                    todo.discard(p)
                elif strict:
                    raise RuntimeError(msg.error().str())
                continue
            if msg.offset() < end.get(p, 0):
                yield msg
            if msg.offset() >= end.get(p, 0) - 1:
                todo.discard(p)
    c.unassign()
