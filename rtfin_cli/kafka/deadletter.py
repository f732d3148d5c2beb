"""The dead-letter contract: what a record on the DLQ topic carries, and the one way to write it.

A dead letter is the payload exactly as received, keyed as received, with headers naming the reason
(``rtfin-error``), where it came from (``rtfin-source``: the source topic, or the outside feed for a
producer), which stage rejected it (``rtfin-stage``) and, for a record consumed from Kafka, its position
(``rtfin-offset`` = ``partition:offset``). The Spark job (jobs/sentiment_stream.py) keeps its own copy of
these names because it runs without rtfin installed; a unit test holds the copies equal.
"""

from __future__ import annotations

from typing import Any, Protocol

ERROR = "rtfin-error"
SOURCE = "rtfin-source"
STAGE = "rtfin-stage"
OFFSET = "rtfin-offset"
HEADERS = (ERROR, SOURCE, STAGE, OFFSET)
MAX_ERROR_CHARS = 1000  # a reason longer than this is cut (headers are not for stack traces)

Headers = list[tuple[str, str]]


class Consumed(Protocol):
    """The part of a consumed Kafka message a dead letter needs (confluent_kafka.Message has it)."""

    def topic(self) -> str | None: ...
    def partition(self) -> int | None: ...
    def offset(self) -> int | None: ...
    def key(self) -> bytes | None: ...
    def value(self) -> bytes | None: ...


def headers(error: str, source: str, stage: str, position: tuple[int, int] | None = None) -> Headers:
    """The DLQ headers of one record; ``position`` is its (partition, offset) in the source topic."""
    out = [(ERROR, error[:MAX_ERROR_CHARS]), (SOURCE, source), (STAGE, stage)]
    if position is not None:
        out.append((OFFSET, f"{position[0]}:{position[1]}"))
    return out


def produce(
    producer: Any, topic: str, key: bytes | None, value: bytes | None, hdrs: Headers, **kwargs: Any
) -> None:
    """Queue one dead letter on ``topic``; waits for queue space (BufferError) instead of dropping it.

    ``kwargs`` go to ``Producer.produce`` as they are (e.g. ``on_delivery``).
    """
    while True:
        try:
            producer.produce(topic, value=value, key=key, headers=hdrs, **kwargs)
            return
        except BufferError:
            producer.poll(0.05)


def dead_letter_message(producer: Any, topic: str, msg: Consumed, error: str, stage: str) -> None:
    """A consumed message that cannot be processed, to the DLQ ``topic`` with its source position."""
    partition, offset = msg.partition(), msg.offset()
    position = (partition, offset) if partition is not None and offset is not None else None
    hdrs = headers(error, msg.topic() or "", stage, position)
    produce(producer, topic, msg.key(), msg.value(), hdrs)
    producer.poll(0)  # serve delivery callbacks as the loader goes
