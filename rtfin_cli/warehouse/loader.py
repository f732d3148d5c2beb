"""rtfin's own Kafka → ClickHouse loader (ingest mode ``loader``), at least once.

The group ``clickhouse.loader_group`` reads the three data topics; each ``consume()`` batch is converted column
by column (records.to_columns; bad records are dead-lettered) and buffered per table, and one background thread
inserts (column-oriented) while the next records are consumed (rows taken while an insert waits for it gather
into one larger insert: fewer, cheaper inserts when it is behind). A full or old batch is sealed and the next
starts at once; a sealed batch is committed only when its inserts are done, its rejected rows (found by
bisecting) dead-lettered and delivered, so a crash or outage loses nothing (raw tables deduplicate on identity).
While ClickHouse is down inserts retry with backoff and consumption waits.
"""

from __future__ import annotations

import gc
import queue
import threading
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, cast

from rtfin_cli.errors import AuthError, RtfinError, ServiceUnavailable
from rtfin_cli.kafka.deadletter import dead_letter_message
from rtfin_cli.settings import RtfinSettings
from rtfin_cli.warehouse.batch import Batch, LoaderStats, Rejected, empty_columns, topic_tables
from rtfin_cli.warehouse.client import translate
from rtfin_cli.warehouse.records import Column, columns, to_columns

if TYPE_CHECKING:
    from clickhouse_connect.driver.client import Client
    from clickhouse_connect.driver.insert import InsertContext
    from confluent_kafka import Message

STAGE = "loader"
INSERT_ROWS = 10000  # rows that start an insert before their batch ends (more gather while one waits)
DRAIN_FETCH_WAIT_MS = 50  # --once: how long the broker may hold a fetch that finds no new records


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
        insert_rows: int = INSERT_ROWS,
        group: str | None = None,
    ) -> None:
        self.settings = settings
        self.group = group or settings.clickhouse.loader_group
        self.ch = settings.clickhouse
        self._client = client
        self.batch_rows = batch_rows or self.ch.loader_batch_rows
        self.batch_s = batch_s if batch_s is not None else self.ch.loader_batch_s
        self.insert_rows = max(1, min(insert_rows, self.batch_rows))
        self.consume_max = 10000  # records one consume() returns at most
        self.progress = progress
        self.max_backoff_s = max_backoff_s
        self.tables = topic_tables(settings)
        self.stop_event = threading.Event()
        self.stats = LoaderStats()
        self._cols: dict[str, list[Column]] = {t: empty_columns(t) for t in self.tables.values()}
        self._batch = Batch.new(self.tables.values())  # the batch records are taken into
        self._sealed: Batch | None = None  # the batch whose inserts run (committed once they are done)
        self._busy_from = 0.0
        self._eof: set[tuple[str, int]] = set()
        self._assigned: set[tuple[str, int]] = set()
        self._inserts: queue.Queue[tuple[Batch, str, list[Column]] | None] = queue.Queue(maxsize=2)
        self._done = threading.Condition()  # notified by the insert thread after each insert
        self._insert_error: BaseException | None = None
        self._abandoned = False  # an insert was given up (stopped while ClickHouse was down)
        self._worker: threading.Thread | None = None
        self._contexts: dict[str, InsertContext] = {}

    def buffered(self, table: str) -> int:
        """Rows of ``table`` waiting for the next insert."""
        return len(self._cols[table][0])

    # -- ClickHouse --------------------------------------------------------------------------------
    def client(self) -> Client:
        if self._client is None:
            from rtfin_cli.warehouse.client import get_client

            self._client = get_client(self.settings)
        return self._client

    def _insert(self, table: str, cols: list[Column]) -> Rejected:
        """Insert columns; returns the (partition, offset, reason) of rows ClickHouse rejected, found by
        bisecting a rejected batch."""
        from clickhouse_connect.driver.exceptions import DatabaseError

        try:
            client = self.client()
            ctx = self._contexts.get(table)
            if ctx is None:  # the column types, asked once (DESCRIBE) rather than before every insert
                ctx = self._contexts[table] = client.create_insert_context(
                    f"{self.ch.raw_database}.{table}", column_names=columns(table), column_oriented=True
                )
            ctx.data = cols
            client.insert(context=ctx)
            return []
        except DatabaseError as exc:
            err = translate(exc, self.ch, f"inserting into {table}")
            if isinstance(err, ServiceUnavailable | AuthError):
                raise err from exc
            n = len(cols[0])
            if n == 1:
                return [(cols[-2][0], cols[-1][0], err.message)]
            mid = n // 2
            return self._insert(table, [c[:mid] for c in cols]) + self._insert(table, [c[mid:] for c in cols])

    def _insert_with_retry(self, table: str, cols: list[Column]) -> Rejected | None:
        """None when stopped while ClickHouse was still down (the batch stays uncommitted)."""
        from clickhouse_connect.driver.exceptions import ClickHouseError

        delay = 0.5
        while True:
            try:
                return self._insert(table, cols)
            except AuthError:
                raise
            except (ServiceUnavailable, ClickHouseError, OSError):
                self._client = None  # reconnect (and ask the column types again) on the next attempt
                self._contexts.clear()
                self.stats.retries += 1
                if self.stop_event.wait(delay):
                    return None
                delay = min(delay * 2, self.max_backoff_s)

    # -- the insert thread ---------------------------------------------------------------------------
    def _insert_loop(self) -> None:
        while True:
            item = self._inserts.get()
            if item is None:
                self._inserts.task_done()
                return
            batch, table, cols = item
            result: tuple[str, int, Rejected] | None = None
            try:
                if not self._abandoned and self._insert_error is None:
                    rejected = self._insert_with_retry(table, cols)
                    if rejected is None:
                        self._abandoned = True
                    else:
                        result = (table, len(cols[0]), rejected)
            except BaseException as exc:  # noqa: BLE001 - re-raised by the consuming thread
                self._insert_error = exc
            finally:
                with self._done:
                    batch.results.append(result)
                    self._done.notify_all()
                self._inserts.task_done()

    def _submit(self, table: str) -> None:
        """Hand the buffered rows of ``table`` to the insert thread (inline when it is not running)."""
        cols = self._cols[table]
        if not cols[0]:
            return
        self._cols[table] = empty_columns(table)
        self._batch.submitted += 1
        self._inserts.put((self._batch, table, cols))
        if self._worker is None:
            self._inserts.put(None)
            self._insert_loop()

    def _start_worker(self) -> None:
        self._worker = threading.Thread(target=self._insert_loop, name="rtfin-loader-insert", daemon=True)
        self._worker.start()

    def _stop_worker(self) -> None:
        if self._worker is not None:
            self._inserts.put(None)
            self._worker.join()
            self._worker = None

    # -- Kafka -------------------------------------------------------------------------------------
    def _dead_letter(self, producer: Any, msg: Message, reason: str) -> None:
        dead_letter_message(producer, self.settings.kafka.topics.dlq, msg, reason, STAGE)
        self.stats.dead_lettered += 1

    def _seal(self, consumer: Any, producer: Any) -> bool:
        """End the current batch: hand its buffered rows to the insert thread and start the next batch.
        The batch sealed before it is committed first (waiting for its inserts). False if stopped
        mid-outage (nothing more is committed)."""
        if not self._batch.offsets:
            return True
        if not self._commit(consumer, producer, wait=True):
            return False
        for table in self._cols:
            self._submit(table)
        self._sealed, self._batch = self._batch, Batch.new(self.tables.values())
        return True

    def _commit(self, consumer: Any, producer: Any, wait: bool) -> bool:
        """Commit the sealed batch once its inserts are done (``wait``: block until they are): dead-letter
        its rejected rows, deliver the dead-letter records, then commit its offsets. False (nothing
        committed) if stopped mid-outage."""
        from confluent_kafka import KafkaException, TopicPartition

        batch = self._sealed
        if batch is None or not (wait or batch.inserted()):
            return not self._abandoned
        with self._done:
            self._done.wait_for(batch.inserted)
        if self._insert_error is not None:
            raise self._insert_error
        if self._abandoned or None in batch.results:
            self._abandoned = True
            return False
        self._sealed = None
        self._count_inserted(batch, producer)
        if producer.flush(self.settings.kafka.timeout_s * 3) > 0:
            raise ServiceUnavailable(
                f"cannot deliver dead-letter records to {self.settings.kafka.bootstrap}",
                "Check Kafka; nothing was committed, the batch will be read again.",
            )
        offsets = [TopicPartition(t, p, o + 1) for (t, p), o in batch.offsets.items()]
        try:
            consumer.commit(offsets=offsets, asynchronous=False)
        except KafkaException:
            # Typically a rebalance during a long ClickHouse outage: the partitions moved on and the
            # new owner re-reads this batch; the raw tables deduplicate it.
            self.stats.commit_failures += 1
        self.stats.batches += 1
        self.stats.busy_s = time.monotonic() - self._busy_from
        if self.progress:
            self.progress(self.stats)
        return True

    def _count_inserted(self, batch: Batch, producer: Any) -> None:
        """Add a done batch's rows to the totals; dead-letter the rows ClickHouse rejected."""
        for result in batch.results:
            assert result is not None
            table, n, rejected = result
            self.stats.inserted[table] += n - len(rejected)
            if rejected:
                by_pos = {(m.partition(), m.offset()): m for m in batch.msgs[table]}
                for part, off, reason in rejected:
                    self._dead_letter(producer, by_pos[(part, off)], f"rejected by ClickHouse: {reason}")

    def _flush(self, consumer: Any, producer: Any) -> bool:
        """Insert and commit everything taken so far, waiting for it. False (nothing more committed) if
        stopped mid-outage."""
        return self._seal(consumer, producer) and self._commit(consumer, producer, wait=True)

    def _take(self, msgs: Sequence[Message], producer: Any) -> None:
        """Convert and buffer records (messages without an error, in partition order); dead-letter the bad."""
        if not msgs:
            return
        batch = self._batch
        now = time.monotonic()
        if not self.stats.consumed:
            self._busy_from = now
        if not batch.records:
            batch.first_at = now
        self.stats.consumed += len(msgs)
        batch.records += len(msgs)
        cls = type(msgs[0])  # its methods mapped over the batch: no Python-level call per message
        topics = cast("list[str]", list(map(cls.topic, msgs)))  # set on every record
        by_topic: dict[str, list[Message]]
        if topics.count(topics[0]) == len(topics):
            by_topic = {topics[0]: list(msgs)}
        else:
            by_topic = {}
            for topic, m in zip(topics, msgs, strict=True):
                by_topic.setdefault(topic, []).append(m)
        for topic, group in by_topic.items():
            table = self.tables[topic]
            parts = cast("list[int]", list(map(cls.partition, group)))
            offs = cast("list[int]", list(map(cls.offset, group)))
            for part, off in dict(zip(parts, offs, strict=True)).items():  # the last offset of each
                batch.offsets[(topic, part)] = off
                self._eof.discard((topic, part))
            cols, bad = to_columns(table, list(map(cls.value, group)), parts, offs, topic)
            for i, reason in bad:
                self._dead_letter(producer, group[i], reason)
            for dst, src in zip(self._cols[table], cols, strict=True):
                dst.extend(src)
            batch.msgs[table].extend(group)
            if len(self._cols[table][0]) >= self.insert_rows and self._inserts.empty():
                self._submit(table)  # (while an insert waits, the rows gather into one larger insert)

    @staticmethod
    def _consume(cons: Any, n: int, timeout: float) -> list[Message]:
        """What the consumer holds (at most ``n``), waiting up to ``timeout`` only when it holds nothing.

        ``consume(n, timeout)`` alone would wait for ``n`` records or the timeout, idling while a drained
        topic's last records (or its end-of-partition events) sit in the queue."""
        msgs: list[Message] = cons.consume(num_messages=n, timeout=0)
        if msgs:
            return msgs
        first = cons.poll(timeout)
        return [first, *cons.consume(num_messages=n - 1, timeout=0)] if first is not None else []

    def run(self, once: bool = False, timeout_s: float | None = None) -> LoaderStats:
        """Consume and load until ``stop()`` (SIGTERM) or, with ``once``, every partition is drained."""
        t0 = time.monotonic()
        self._preflight()
        cons, prod = self._open(once)
        self._start_worker()
        # What is alive now (modules, clients, the caller's data) outlives the loop: out of the collector's
        # way, a full collection walks only the records in flight rather than the whole process each time.
        gc.freeze()
        try:
            self.stats.stopped_by = self._loop(cons, prod, once, t0, timeout_s)
            self._flush(cons, prod)
        except BaseException:
            self.stop_event.set()  # an insert still retrying gives up; nothing more is committed
            raise
        finally:
            gc.unfreeze()
            self._stop_worker()
            cons.close()
            prod.flush(self.settings.kafka.timeout_s)
            self.stats.elapsed_s = time.monotonic() - t0
        return self.stats

    def _preflight(self) -> None:
        """Fail fast, with one line naming the service, when Kafka, a topic or ClickHouse is missing."""
        from rtfin_cli.kafka.clients import check_reachable

        meta = check_reachable(self.settings.kafka)
        missing = [t for t in self.tables if t not in meta.topics]
        if missing:
            raise RtfinError(
                f"topic(s) {', '.join(missing)} do not exist on {self.settings.kafka.bootstrap}",
                "Create them with `rtfin topics create`.",
            )
        self.client()
        from clickhouse_connect.driver import options

        # clickhouse-connect probes for pandas lazily on the first insert: do it now, not inside a batch.
        getattr(options, "pd", None)

    def _open(self, once: bool) -> tuple[Any, Any]:
        """The subscribed consumer and the dead-letter producer. A revoked partition's batch is flushed."""
        from rtfin_cli.kafka.clients import consumer, producer

        # With --once the end of each partition is an event; the broker holds an empty fetch for
        # fetch.wait.max.ms (librdkafka's default 500 ms) before it reports that end, which would
        # dominate a short drain. A record arriving during a wait is returned at once either way.
        drain = {"enable.partition.eof": True, "fetch.wait.max.ms": DRAIN_FETCH_WAIT_MS}
        cons = consumer(self.settings.kafka, self.group, **(drain if once else {}))
        prod = producer(self.settings.kafka)

        def on_assign(c: Any, parts: list[Any]) -> None:
            self._assigned |= {(p.topic, p.partition) for p in parts}

        def on_revoke(c: Any, parts: list[Any]) -> None:
            self._flush(c, prod)
            self._assigned -= {(p.topic, p.partition) for p in parts}
            self._eof -= {(p.topic, p.partition) for p in parts}

        cons.subscribe(list(self.tables), on_assign=on_assign, on_revoke=on_revoke)
        return cons, prod

    def _loop(self, cons: Any, prod: Any, once: bool, t0: float, timeout_s: float | None) -> str:
        """Take, insert and commit batches; returns why it stopped (signal | timeout | drained | '')."""
        from confluent_kafka import Message

        while not self.stop_event.is_set():
            if timeout_s is not None and time.monotonic() - t0 > timeout_s:
                return "timeout"
            msgs = self._consume(cons, min(self.consume_max, self.batch_rows), 0.2)
            errors = [m for m, e in zip(msgs, map(Message.error, msgs), strict=True) if e is not None]
            self._take([m for m in msgs if m.error() is None] if errors else msgs, prod)
            self._events(errors)
            if not (self._seal(cons, prod) if self._due() else self._commit(cons, prod, wait=False)):
                return ""
            if once and self._assigned and self._eof >= self._assigned:
                return "drained"
        return "signal"

    def _events(self, errors: list[Message]) -> None:
        """Note each partition's end (--once); a fatal consumer error ends the run."""
        from confluent_kafka import KafkaError

        for msg in errors:
            err = msg.error()
            if err is None:
                continue
            if err.code() == KafkaError._PARTITION_EOF:
                self._eof.add((msg.topic() or "", msg.partition() or 0))
            elif err.fatal():
                raise ServiceUnavailable(f"Kafka consumer failed: {err.str()}")

    def _due(self) -> bool:
        """The batch is full (rows) or old (seconds)."""
        batch = self._batch
        return batch.records >= self.batch_rows or bool(
            batch.records and time.monotonic() - batch.first_at >= self.batch_s
        )

    def stop(self) -> None:
        self.stop_event.set()
