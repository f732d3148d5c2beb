"""rtfin's own Kafka → ClickHouse loader (ingest mode ``loader``).

Consumer group ``rtfin-loader`` reads the three data topics; rows are buffered per table and
inserted through clickhouse-connect when a batch is full (rows) or old (seconds). Offsets are
committed only after ClickHouse accepted every insert of the batch and the dead-letter records
of the batch were delivered, so a crash or an outage loses nothing (at-least-once; the raw tables
deduplicate on identity). When ClickHouse is down the batch is retried with backoff.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from rtfin_cli.errors import AuthError, RtfinError, ServiceUnavailable
from rtfin_cli.settings import RtfinSettings
from rtfin_cli.warehouse.client import translate
from rtfin_cli.warehouse.records import BadRecord, columns, to_row

if TYPE_CHECKING:
    from clickhouse_connect.driver.client import Client
    from confluent_kafka import Message

GROUP = "rtfin-loader"
STAGE = "loader"


@dataclass
class LoaderStats:
    consumed: int = 0
    inserted: dict[str, int] = field(
        default_factory=lambda: {"news": 0, "stock_aggs": 0, "news_sentiment": 0}
    )
    dead_lettered: int = 0
    batches: int = 0
    retries: int = 0
    commit_failures: int = 0
    elapsed_s: float = 0.0
    busy_s: float = 0.0  # from the first record consumed to the last commit (excludes group join)
    stopped_by: str = ""

    @property
    def rows(self) -> int:
        return sum(self.inserted.values())

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "rows": self.rows}


def topic_tables(settings: RtfinSettings) -> dict[str, str]:
    t = settings.kafka.topics
    return {t.news_raw: "news", t.stocks_aggs: "stock_aggs", t.news_sentiment: "news_sentiment"}


class Loader:
    """One loader process: ``run()`` until stopped (or, with ``once``, until the topics are drained)."""

    def __init__(
        self,
        settings: RtfinSettings,
        client: Client | None = None,
        batch_rows: int | None = None,
        batch_s: float | None = None,
        progress: Callable[[LoaderStats], None] | None = None,
        max_backoff_s: float = 30.0,
    ) -> None:
        self.settings = settings
        self.ch = settings.clickhouse
        self._client = client
        self.batch_rows = batch_rows or self.ch.loader_batch_rows
        self.batch_s = batch_s if batch_s is not None else self.ch.loader_batch_s
        self.progress = progress
        self.max_backoff_s = max_backoff_s
        self.tables = topic_tables(settings)
        self.stop_event = threading.Event()
        self.stats = LoaderStats()
        self._rows: dict[str, list[list[Any]]] = {t: [] for t in self.tables.values()}
        self._msgs: dict[str, list[Any]] = {t: [] for t in self.tables.values()}  # aligned with _rows
        self._offsets: dict[tuple[str, int], int] = {}
        self._pending = 0
        self._first_at = 0.0
        self._busy_from = 0.0
        self._eof: set[tuple[str, int]] = set()
        self._assigned: set[tuple[str, int]] = set()

    # -- ClickHouse --------------------------------------------------------------------------------
    def client(self) -> Client:
        if self._client is None:
            from rtfin_cli.warehouse.client import get_client

            self._client = get_client(self.settings)
        return self._client

    def _insert(self, table: str, rows: list[list[Any]]) -> list[tuple[list[Any], str]]:
        """Insert rows; returns rows ClickHouse rejected (with the reason) after bisecting a bad batch."""
        from clickhouse_connect.driver.exceptions import DatabaseError

        try:
            self.client().insert(f"{self.ch.raw_database}.{table}", rows, column_names=columns(table))
            return []
        except DatabaseError as exc:
            err = translate(exc, self.ch, f"inserting into {table}")
            if isinstance(err, ServiceUnavailable | AuthError):
                raise err from exc
            if len(rows) == 1:
                return [(rows[0], err.message)]
            mid = len(rows) // 2
            return self._insert(table, rows[:mid]) + self._insert(table, rows[mid:])

    def _insert_with_retry(self, table: str, rows: list[list[Any]]) -> list[tuple[list[Any], str]] | None:
        """None when stopped while ClickHouse was still down (the batch stays uncommitted)."""
        from clickhouse_connect.driver.exceptions import ClickHouseError

        delay = 0.5
        while True:
            try:
                return self._insert(table, rows)
            except AuthError:
                raise
            except (ServiceUnavailable, ClickHouseError, OSError):
                self._client = None  # reconnect on the next attempt
                self.stats.retries += 1
                if self.stop_event.wait(delay):
                    return None
                delay = min(delay * 2, self.max_backoff_s)

    # -- Kafka -------------------------------------------------------------------------------------
    def _dead_letter(self, producer: Any, msg: Message, reason: str) -> None:
        headers = [
            ("rtfin-error", reason[:1000]),
            ("rtfin-source", msg.topic() or ""),
            ("rtfin-stage", STAGE),
        ]
        producer.produce(self.settings.kafka.topics.dlq, value=msg.value(), key=msg.key(), headers=headers)
        producer.poll(0)
        self.stats.dead_lettered += 1

    def _flush(self, consumer: Any, producer: Any) -> bool:
        """Insert buffered rows, deliver DLQ records, then commit. False if stopped mid-outage."""
        from confluent_kafka import KafkaException, TopicPartition

        if not self._offsets:
            return True
        for table, rows in self._rows.items():
            if not rows:
                continue
            rejected = self._insert_with_retry(table, rows)
            if rejected is None:
                return False
            self.stats.inserted[table] += len(rows) - len(rejected)
            if rejected:
                by_pos = {(m.partition(), m.offset()): m for m in self._msgs[table]}
                for row, reason in rejected:
                    self._dead_letter(
                        producer, by_pos[(row[-2], row[-1])], f"rejected by ClickHouse: {reason}"
                    )
            rows.clear()
            self._msgs[table].clear()
        if producer.flush(self.settings.kafka.timeout_s * 3) > 0:
            raise ServiceUnavailable(
                f"cannot deliver dead-letter records to {self.settings.kafka.bootstrap}",
                "Check Kafka; nothing was committed, the batch will be read again.",
            )
        offsets = [TopicPartition(t, p, o + 1) for (t, p), o in self._offsets.items()]
        try:
            consumer.commit(offsets=offsets, asynchronous=False)
        except KafkaException:
            # Typically a rebalance during a long ClickHouse outage: the partitions moved on and the
            # new owner re-reads this batch; the raw tables deduplicate it.
            self.stats.commit_failures += 1
        self.stats.batches += 1
        self.stats.busy_s = time.monotonic() - self._busy_from
        self._offsets.clear()
        self._pending = 0
        if self.progress:
            self.progress(self.stats)
        return True

    def _take(self, msg: Message, producer: Any) -> None:
        topic, part, off = msg.topic() or "", msg.partition() or 0, msg.offset() or 0
        table = self.tables[topic]
        if not self.stats.consumed:
            self._busy_from = time.monotonic()
        self.stats.consumed += 1
        if not self._pending:
            self._first_at = time.monotonic()
        self._pending += 1
        self._offsets[(topic, part)] = off
        value = msg.value()
        try:
            if value is None:
                raise BadRecord("empty value")
            self._rows[table].append(to_row(table, value, part, off))
            self._msgs[table].append(msg)
        except BadRecord as exc:
            self._dead_letter(producer, msg, str(exc))

    def run(self, once: bool = False, timeout_s: float | None = None) -> LoaderStats:
        """Consume and load until ``stop()`` (SIGTERM) or, with ``once``, every partition is drained."""
        from confluent_kafka import KafkaError

        from rtfin_cli.kafka.clients import check_reachable, consumer, producer

        t0 = time.monotonic()
        meta = check_reachable(self.settings.kafka)
        missing = [t for t in self.tables if t not in meta.topics]
        if missing:
            raise RtfinError(
                f"topic(s) {', '.join(missing)} do not exist on {self.settings.kafka.bootstrap}",
                "Create them with `rtfin topics create`.",
            )
        self.client()  # fail fast (one line naming the host) when ClickHouse is unreachable
        from clickhouse_connect.driver import options

        # clickhouse-connect probes for pandas lazily on the first insert: do it now, not inside a batch.
        getattr(options, "pd", None)
        cons = consumer(self.settings.kafka, GROUP, **({"enable.partition.eof": True} if once else {}))
        prod = producer(self.settings.kafka)

        def on_assign(c: Any, parts: list[Any]) -> None:
            self._assigned |= {(p.topic, p.partition) for p in parts}

        def on_revoke(c: Any, parts: list[Any]) -> None:
            self._flush(c, prod)
            self._assigned -= {(p.topic, p.partition) for p in parts}
            self._eof -= {(p.topic, p.partition) for p in parts}

        cons.subscribe(list(self.tables), on_assign=on_assign, on_revoke=on_revoke)
        try:
            while not self.stop_event.is_set():
                if timeout_s is not None and time.monotonic() - t0 > timeout_s:
                    self.stats.stopped_by = "timeout"
                    break
                msgs = cons.consume(num_messages=min(10000, self.batch_rows), timeout=0.2)
                for msg in msgs:
                    err = msg.error()
                    if err is None:
                        self._take(msg, prod)
                        self._eof.discard((msg.topic() or "", msg.partition() or 0))
                    elif err.code() == KafkaError._PARTITION_EOF:
                        self._eof.add((msg.topic() or "", msg.partition() or 0))
                    elif err.fatal():
                        raise ServiceUnavailable(f"Kafka consumer failed: {err.str()}")
                age = time.monotonic() - self._first_at
                full = self._pending >= self.batch_rows or (self._pending and age >= self.batch_s)
                if full and not self._flush(cons, prod):
                    break
                if once and self._assigned and self._eof >= self._assigned:
                    self.stats.stopped_by = "drained"
                    break
            else:
                self.stats.stopped_by = "signal"
            if self._pending:
                self._flush(cons, prod)
        finally:
            cons.close()
            prod.flush(self.settings.kafka.timeout_s)
            self.stats.elapsed_s = time.monotonic() - t0
        return self.stats

    def stop(self) -> None:
        self.stop_event.set()
