"""Kafka's side of `rtfin verify`: what each partition still retains, how far the ingesting consumer group
has committed, which positions went to the dead-letter topic, and what records an offset range holds.

Watermarks (and the first offset at or after ``--since``) come from ``AdminClient.list_offsets``: one
ListOffsets request per partition leader, i.e. one round trip per broker for each kind. Committed offsets
come from a consumer whose ``group.id`` is the ingesting group (``Consumer.committed``: one OffsetFetch to
the group's coordinator; never subscribes, so it never joins the group or commits). An admin OffsetFetch
is avoided: librdkafka dereferences a NULL consumer group when it is answered NOT_COORDINATOR
(confluentinc/librdkafka#5040).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from rtfin_cli.errors import RtfinError, ServiceUnavailable
from rtfin_cli.kafka import deadletter
from rtfin_cli.kafka.clients import admin, check_reachable, consumer

if TYPE_CHECKING:
    from confluent_kafka import Consumer, Message

    from rtfin_cli.settings import RtfinSettings

TP = tuple[str, int]
READ_THROUGH = 500  # offsets between two probed ranges read through rather than seeking again


@dataclass
class Retained:
    """One partition: records ``low`` .. ``high - 1`` are in Kafka; the group committed ``committed``
    (None: never); ``start`` is where the check begins (``low``, or the first record at ``--since``)."""

    low: int
    high: int
    committed: int | None
    start: int

    @property
    def end(self) -> int:
        """The check ends before the committed offset (what the group has taken for loaded)."""
        return max(self.start, self.committed if self.committed is not None else self.start)


def _list_offsets(adm: Any, tps: list[Any], spec: str, timeout: float, ts: int = 0) -> dict[TP, int]:
    """One ListOffsets per partition leader: ``spec`` earliest | latest | for_timestamp (``ts``)."""
    from confluent_kafka.admin import OffsetSpec  # type: ignore[attr-defined]

    kind = OffsetSpec.for_timestamp(ts) if spec == "for_timestamp" else getattr(OffsetSpec, spec)()
    futures = adm.list_offsets({tp: kind for tp in tps}, request_timeout=timeout)
    return {(tp.topic, tp.partition): int(f.result().offset) for tp, f in futures.items()}


def retained(settings: RtfinSettings, topics: list[str], since_ms: int | None = None) -> dict[TP, Retained]:
    """Every partition of ``topics``: watermarks, the ingesting group's committed offset, the start."""
    from confluent_kafka import KafkaException, TopicPartition

    kafka = settings.kafka
    meta = check_reachable(kafka)
    missing = [t for t in topics if t not in meta.topics]
    if missing:
        raise RtfinError(
            f"topic(s) {', '.join(missing)} do not exist on {kafka.bootstrap}", "Check kafka.topics.*."
        )
    tps = [TopicPartition(t, p) for t in topics for p in sorted(meta.topics[t].partitions)]
    adm = admin(kafka)
    try:
        low = _list_offsets(adm, tps, "earliest", kafka.timeout_s)
        high = _list_offsets(adm, tps, "latest", kafka.timeout_s)
        at = _list_offsets(adm, tps, "for_timestamp", kafka.timeout_s, since_ms) if since_ms else {}
        committed = _committed(settings, tps)
    except KafkaException as exc:
        raise ServiceUnavailable(
            f"cannot read offsets from Kafka at {kafka.bootstrap}: {exc.args[0] if exc.args else exc}",
            "Check that the brokers are up, then run `rtfin verify` again.",
        ) from None
    out = {}
    for key in low:
        start = low[key]
        if key in at:  # -1: no record at or after --since
            start = max(start, at[key] if at[key] >= 0 else high[key])
        out[key] = Retained(low[key], high[key], committed.get(key), start)
    return out


def _committed(settings: RtfinSettings, tps: list[Any]) -> dict[TP, int]:
    """The committed offset of each partition by the group that ingests its topic (ingest mode)."""
    out: dict[TP, int] = {}
    for group, group_topics in settings.ingest_groups().items():
        mine = [tp for tp in tps if tp.topic in group_topics]
        if not mine:
            continue
        c = consumer(settings.kafka, group, **{"enable.auto.offset.store": False})
        try:
            for tp in c.committed(mine, timeout=settings.kafka.timeout_s):
                if tp.error is None and tp.offset >= 0:
                    out[(tp.topic, tp.partition)] = tp.offset
        finally:
            c.close()
    return out


def _reader(settings: RtfinSettings) -> Consumer:
    """A consumer that only reads assigned partitions (never subscribes or commits), committed records only."""
    return consumer(
        settings.kafka,
        f"{settings.kafka.client_id}-verify",
        **{
            "enable.partition.eof": True,
            "isolation.level": "read_committed",
            "enable.auto.offset.store": False,
        },
    )


def read_ranges(
    settings: RtfinSettings, ranges: dict[TP, list[tuple[int, int]]], on_record: Callable[[Message], None]
) -> None:
    """Call ``on_record`` for each record at an offset inside ``ranges`` ({tp: [(first, last)] sorted}).

    Offsets of a range that hold no record (transaction markers, aborted records) are simply not seen.
    Ranges closer than READ_THROUGH are read through in one pass; each other range is one fetch."""
    from confluent_kafka import KafkaError, TopicPartition

    if not ranges:
        return
    c = _reader(settings)
    deadline = time.monotonic() + max(30.0, settings.kafka.timeout_s * 6)
    try:
        for (topic, part), spans in ranges.items():
            for first, last, wanted in _passes(spans):
                c.assign([TopicPartition(topic, part, first)])
                done = False
                while not done:
                    if time.monotonic() > deadline:
                        raise ServiceUnavailable(
                            f"reading {topic}[{part}] from Kafka at {settings.kafka.bootstrap} timed out",
                            "Check the brokers, or narrow the check with --since.",
                        )
                    for msg in c.consume(500, timeout=1.0):
                        err = msg.error()
                        if err is not None:
                            done = done or err.code() == KafkaError._PARTITION_EOF
                            continue
                        off = msg.offset() or 0
                        if off > last:
                            done = True
                            break
                        if wanted(off):
                            on_record(msg)
                        done = off >= last
    finally:
        c.close()


def _passes(spans: list[tuple[int, int]]) -> Iterable[tuple[int, int, Callable[[int], bool]]]:
    """Sorted ranges grouped into reads: (first, last, is this offset inside one of the group's ranges)."""
    group: list[tuple[int, int]] = []
    for span in spans:
        if group and span[0] - group[-1][1] > READ_THROUGH:
            yield _pass(group)
            group = []
        group.append(span)
    if group:
        yield _pass(group)


def _pass(group: list[tuple[int, int]]) -> tuple[int, int, Callable[[int], bool]]:
    spans = list(group)
    return spans[0][0], spans[-1][1], lambda off: any(a <= off <= b for a, b in spans)


def dead_letters(settings: RtfinSettings, stage: str, topics: Iterable[str]) -> dict[TP, set[int]]:
    """Positions in ``topics`` that ``stage`` sent to the dead-letter topic (its rtfin-offset header)."""
    dlq, wanted = settings.kafka.topics.dlq, set(topics)
    meta = check_reachable(settings.kafka)
    if dlq not in meta.topics:
        return {}
    from confluent_kafka import TopicPartition

    tps = [TopicPartition(dlq, p) for p in sorted(meta.topics[dlq].partitions)]
    adm = admin(settings.kafka)
    low = _list_offsets(adm, tps, "earliest", settings.kafka.timeout_s)
    high = _list_offsets(adm, tps, "latest", settings.kafka.timeout_s)
    spans = {k: [(low[k], high[k] - 1)] for k in low if high[k] > low[k]}
    out: dict[TP, set[int]] = {}

    def note(msg: Message) -> None:
        h = _headers(msg.headers() or [])
        if h.get(deadletter.STAGE) != stage or h.get(deadletter.SOURCE) not in wanted:
            return
        part, _, off = h.get(deadletter.OFFSET, "").partition(":")
        if part.lstrip("-").isdigit() and off.isdigit():
            out.setdefault((h[deadletter.SOURCE], int(part)), set()).add(int(off))

    read_ranges(settings, spans, note)
    return out


def _headers(pairs: Any) -> dict[str, str]:
    """Kafka record headers as text (a header may repeat: the last wins)."""
    return {str(k): v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v or "") for k, v in pairs}
