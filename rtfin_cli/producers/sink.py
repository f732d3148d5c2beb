"""The Kafka side of a producer: idempotent keyed writes, delivery accounting, dead letters, stop signals."""

from __future__ import annotations

import asyncio
import logging
import signal
import threading
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from rtfin_cli.errors import RtfinError, ServiceUnavailable
from rtfin_cli.kafka import clients, deadletter
from rtfin_cli.report import Event, EventKind, Reporter

if TYPE_CHECKING:
    from rtfin_cli.settings import KafkaSettings

log = logging.getLogger("rtfin.producers")
KAFKA_INVALID_RECORD = 87  # "Broker failed to validate record"
STAGE = "produce"
BULK_LINGER_MS = 100  # a bulk write (a repair) is flushed at its end: fewer, larger batches cost less CPU
ACK_POLL_S = 0.005  # how often ``AckPoller`` serves delivery reports while records are in flight


@dataclass
class Stats:
    """A producer's counters, reported as the payload of its progress events (the cli renders them)."""

    source: str
    produced: int = 0  # handed to the Kafka client
    delivered: int = 0  # acknowledged by the broker
    dead_lettered: int = 0
    duplicates: int = 0  # seen before, not re-sent
    failed: int = 0  # delivery failures (fatal)
    reconnects: int = 0
    retries: int = 0
    last_event_ms: int | None = None
    started: float = field(default_factory=time.monotonic)
    last_error: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)  # a producer's own counters, reported beside these

    @property
    def rate(self) -> float:
        return self.delivered / max(1e-6, time.monotonic() - self.started)

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out.pop("started")
        out.update(out.pop("extra"))
        out["rate"] = round(self.rate, 1)
        out["elapsed_s"] = round(time.monotonic() - self.started, 1)
        return out


class KafkaSink:
    """Writes records (key, JSON value, event-time timestamp) and dead letters; counts deliveries."""

    def __init__(
        self,
        kafka: KafkaSettings,
        stats: Stats,
        topics: list[str],
        stage: str = STAGE,
        bulk: bool = False,
        check: bool = True,
        errors_only: bool = False,
    ) -> None:
        """``bulk``: the broker reports failed deliveries only (no Python call per acknowledged record) and
        batches linger at least ``BULK_LINGER_MS``; ``delivered`` is counted when ``flush`` saw every record out.
        ``errors_only``: failure reports only as well, and ``delivered`` follows the records that left the
        client without one, at each ``poll`` (``serve``): a lower bound while dead letters are in flight.
        ``check=False``: the caller calls ``check_topics`` before the first record (the client connects in
        the background meanwhile, ~50 ms)."""
        self.kafka, self.stats, self.stage, self.bulk = kafka, stats, stage, bulk
        self.errors_only = errors_only or bulk
        self.dlq_topic = kafka.topics.dlq
        conf: dict[str, Any] = {}
        if self.errors_only:
            conf = {"delivery.report.only.error": True, "on_delivery": self._delivered}
        if bulk:
            conf["linger.ms"] = max(kafka.linger_ms, BULK_LINGER_MS)
        self.producer = clients.producer(kafka, **conf)
        # None: the producer's own callback, which sees failures only
        self._on_delivery = None if self.errors_only else self._delivered
        self.topics = [*topics, self.dlq_topic]
        if check:
            self.check_topics()

    def check_topics(self) -> None:
        """ServiceUnavailable when the broker does not answer, RtfinError naming the topics it lacks."""
        from confluent_kafka import KafkaException

        try:
            meta = self.producer.list_topics(timeout=self.kafka.timeout_s)
        except KafkaException as exc:
            raise ServiceUnavailable(
                f"Kafka at {self.kafka.bootstrap} is unreachable ({exc.args[0].str() if exc.args else exc})",
                "Start it with `rtfin local kafka start` or check kafka.bootstrap / security settings.",
            ) from None
        missing = [t for t in self.topics if t not in meta.topics]
        if missing:
            raise RtfinError(
                f"topic(s) missing: {', '.join(missing)}", "Create them with `rtfin topics create`."
            )

    def _delivered(self, err: Any, msg: Any) -> None:
        """Delivery report of a record (one per record: keep it cheap)."""
        if err is None:
            self.stats.delivered += 1
        else:
            self._failed(err, msg)

    def _dead_letter_delivered(self, err: Any, msg: Any) -> None:
        """Delivery report of a dead letter: counted in ``dead_lettered`` when queued, here only if it fails."""
        if err is not None:
            self._failed(err, msg)

    def _failed(self, err: Any, msg: Any) -> None:
        self.stats.failed += 1
        hint = " (is the message timestamp outside the broker's message.timestamp.*.max.ms window?)"
        self.stats.last_error = f"delivery to {msg.topic()} failed: {err.str()}" + (
            hint if err.code() == KAFKA_INVALID_RECORD else ""
        )
        log.error(self.stats.last_error)

    def send(
        self,
        topic: str,
        key: str,
        value: bytes,
        ts_ms: int,
        headers: list[tuple[str, str | bytes | None]] | None = None,
    ) -> None:
        """Queue one record; waits for queue space instead of dropping."""
        while True:
            try:  # by position, as in ``send_many`` (partition -1: the partitioner's)
                self.producer.produce(topic, value, key.encode(), -1, self._on_delivery, None, ts_ms, headers)
                break
            except BufferError:
                self.producer.poll(0.05)
        self.stats.produced += 1

    def send_many(
        self,
        topic: str,
        key: str,
        records: Iterable[tuple[int, bytes]],
        headers: list[tuple[str, str | bytes | None]] | None = None,
    ) -> None:
        """Queue ``(ts_ms, value)`` records of one key, as ``send`` does each, in one loop (a repair's bars)."""
        produce, delivered, raw_key, n = self.producer.produce, self._on_delivery, key.encode(), 0
        for ts_ms, value in records:
            while True:
                try:  # by position (partition -1: the partitioner's; callback None: the producer's own):
                    produce(topic, value, raw_key, -1, delivered, None, ts_ms, headers)  # 1/3 cheaper
                    break
                except BufferError:
                    self.producer.poll(0.05)
            n += 1
        self.stats.produced += n

    def dead_letter(self, key: str | None, payload: str | bytes, error: str) -> None:
        """The raw payload to the DLQ with the dead-letter headers (source: the feed, stage: produce)."""
        value = payload.encode() if isinstance(payload, str) else payload
        hdrs = deadletter.headers(error, self.stats.source, self.stage)
        raw_key = key.encode() if key else None
        deadletter.produce(
            self.producer, self.dlq_topic, raw_key, value, hdrs, on_delivery=self._dead_letter_delivered
        )
        self.stats.dead_lettered += 1
        log.warning("dead-lettered a %s payload: %s", self.stats.source, error)

    def serve(self) -> int:
        """Serve delivery reports without raising; the records (and reports) still in flight."""
        self.producer.poll(0)
        in_flight = len(self.producer)
        if self.errors_only and not self.bulk:  # a record out of the client without a failure report is acked
            done = self.stats.produced - self.stats.failed - in_flight
            if done > self.stats.delivered:
                self.stats.delivered = done
        return in_flight

    def poll(self) -> None:
        """Serve delivery reports; raise when some record could not be delivered."""
        self.serve()
        if self.stats.failed:
            raise ServiceUnavailable(
                f"{self.stats.failed} record(s) could not be delivered to Kafka ({self.stats.last_error})",
                "Check the broker, the topics and kafka.* settings; nothing after the failure was sent.",
            )

    def flush(self, timeout: float = 30.0) -> None:
        """Wait for every queued record; raise when some could not be delivered."""
        remaining = self.producer.flush(timeout)
        if remaining:
            raise ServiceUnavailable(
                f"{remaining} record(s) still undelivered after {timeout:.0f}s",
                "Check that Kafka is reachable.",
            )
        if self.errors_only:  # every record is out; failures were reported
            self.stats.delivered = self.stats.produced - self.stats.failed
        self.poll()


class AckPoller:
    """Serves a sink's delivery reports every ``interval`` seconds while records are in flight, on the
    running event loop: otherwise the reports of a burst's last records wait for the next frame or heartbeat,
    and ``delivered`` (what the producer knows is durable) lags the broker's acknowledgements."""

    def __init__(self, sink: KafkaSink, interval: float = ACK_POLL_S) -> None:
        self.sink, self.interval = sink, interval
        self._timer: asyncio.TimerHandle | None = None

    def arm(self) -> None:
        """Records were queued: make sure a poll follows (one pending timer at a time)."""
        if self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(self.interval, self._poll)

    def _poll(self) -> None:
        self._timer = None
        if self.sink.serve():  # a failed delivery is counted here; the next ``KafkaSink.poll`` raises it
            self.arm()

    def cancel(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


def stop_on_signals(stop: threading.Event) -> None:
    """SIGTERM and SIGINT set ``stop`` (the producer then flushes and returns normally)."""

    def handler(signum: int, frame: Any) -> None:
        log.info("received %s: flushing and stopping", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)


class Ticker:
    """Emits the counters as a progress event at most every ``interval`` seconds."""

    def __init__(self, reporter: Reporter | None, stats: Stats, interval: float = 1.0) -> None:
        self.reporter, self.stats, self.interval, self._last = reporter, stats, interval, 0.0

    def __call__(self, force: bool = False) -> None:
        now = time.monotonic()
        if self.reporter is not None and (force or now - self._last >= self.interval):
            self._last = now
            self.reporter.emit(Event(EventKind.PROGRESS, STAGE, self.stats.as_dict()))
