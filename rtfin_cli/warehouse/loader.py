"""rtfin's own Kafka → ClickHouse loader (ingest mode ``loader``).

Consumer group ``rtfin-loader`` reads the three data topics; each batch ``consume()`` returns is
converted column by column (records.to_columns: bad records go to the dead-letter topic with the
field named) and buffered per table. Inserts (clickhouse-connect, column-oriented, at most
``insert_rows`` rows each) run on one background thread while the next records are consumed and
converted. A batch ends when it is full (rows) or old (seconds): the loader waits for every insert
of the batch, dead-letters the rows ClickHouse rejected (found by bisecting), delivers the batch's
dead-letter records and only then commits its offsets, so a crash or an outage loses nothing
(at-least-once; the raw tables deduplicate on identity). When ClickHouse is down an insert is
retried with backoff (and consumption pauses: at most two inserts wait).
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, cast

from rtfin_cli.errors import AuthError, RtfinError, ServiceUnavailable
from rtfin_cli.settings import RtfinSettings
from rtfin_cli.warehouse.client import translate
from rtfin_cli.warehouse.records import Column, columns, to_columns

if TYPE_CHECKING:
    from clickhouse_connect.driver.client import Client
    from clickhouse_connect.driver.insert import InsertContext
    from confluent_kafka import Message

GROUP = "rtfin-loader"
STAGE = "loader"
INSERT_ROWS = 10000  # the most rows of one insert (a batch of more rows is inserted in pieces)


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
        insert_rows: int = INSERT_ROWS,
    ) -> None:
        self.settings = settings
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
        self._cols: dict[str, list[Column]] = {t: self._empty(t) for t in self.tables.values()}
        self._msgs: dict[str, list[Any]] = {t: [] for t in self.tables.values()}  # taken, by table
        self._offsets: dict[tuple[str, int], int] = {}
        self._pending = 0
        self._first_at = 0.0
        self._busy_from = 0.0
        self._eof: set[tuple[str, int]] = set()
        self._assigned: set[tuple[str, int]] = set()
        self._inserts: queue.Queue[tuple[str, list[Column]] | None] = queue.Queue(maxsize=2)
        self._inserted: list[tuple[str, int, list[tuple[int, int, str]]]] = []  # by the insert thread
        self._insert_error: BaseException | None = None
        self._abandoned = False  # an insert was given up (stopped while ClickHouse was down)
        self._worker: threading.Thread | None = None
        self._contexts: dict[str, InsertContext] = {}

    @staticmethod
    def _empty(table: str) -> list[Column]:
        return [[] for _ in columns(table)]

    def buffered(self, table: str) -> int:
        """Rows of ``table`` waiting for the next insert."""
        return len(self._cols[table][0])

    # -- ClickHouse --------------------------------------------------------------------------------
    def client(self) -> Client:
        if self._client is None:
            from rtfin_cli.warehouse.client import get_client

            self._client = get_client(self.settings)
        return self._client

    def _insert(self, table: str, cols: list[Column]) -> list[tuple[int, int, str]]:
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

    def _insert_with_retry(self, table: str, cols: list[Column]) -> list[tuple[int, int, str]] | None:
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
            table, cols = item
            try:
                if not self._abandoned and self._insert_error is None:
                    rejected = self._insert_with_retry(table, cols)
                    if rejected is None:
                        self._abandoned = True
                    else:
                        self._inserted.append((table, len(cols[0]), rejected))
            except BaseException as exc:  # noqa: BLE001 - re-raised by the consuming thread
                self._insert_error = exc
            finally:
                self._inserts.task_done()

    def _submit(self, table: str) -> None:
        """Hand the buffered rows of ``table`` to the insert thread (inline when it is not running)."""
        cols = self._cols[table]
        if not cols[0]:
            return
        self._cols[table] = self._empty(table)
        if self._worker is None:
            self._inserts.put((table, cols))
            self._inserts.put(None)
            self._insert_loop()
        else:
            self._inserts.put((table, cols))

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
        headers = [
            ("rtfin-error", reason[:1000]),
            ("rtfin-source", msg.topic() or ""),
            ("rtfin-stage", STAGE),
        ]
        producer.produce(self.settings.kafka.topics.dlq, value=msg.value(), key=msg.key(), headers=headers)
        producer.poll(0)
        self.stats.dead_lettered += 1

    def _flush(self, consumer: Any, producer: Any) -> bool:
        """Insert what is buffered and wait for every insert of the batch; dead-letter rejected rows,
        deliver DLQ records, then commit. False (nothing committed) if stopped mid-outage."""
        from confluent_kafka import KafkaException, TopicPartition

        if not self._offsets:
            return True
        for table in self._cols:
            self._submit(table)
        self._inserts.join()
        if self._insert_error is not None:
            raise self._insert_error
        if self._abandoned:
            return False
        done, self._inserted = self._inserted, []
        for table, n, rejected in done:
            self.stats.inserted[table] += n - len(rejected)
            if rejected:
                by_pos = {(m.partition(), m.offset()): m for m in self._msgs[table]}
                for part, off, reason in rejected:
                    self._dead_letter(producer, by_pos[(part, off)], f"rejected by ClickHouse: {reason}")
        for msgs in self._msgs.values():
            msgs.clear()
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

    def _take(self, msgs: Sequence[Message], producer: Any) -> None:
        """Convert and buffer records (messages without an error, in partition order); dead-letter the bad."""
        if not msgs:
            return
        now = time.monotonic()
        if not self.stats.consumed:
            self._busy_from = now
        if not self._pending:
            self._first_at = now
        self.stats.consumed += len(msgs)
        self._pending += len(msgs)
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
                self._offsets[(topic, part)] = off
                self._eof.discard((topic, part))
            cols, bad = to_columns(table, list(map(cls.value, group)), parts, offs)
            for i, reason in bad:
                self._dead_letter(producer, group[i], reason)
            for dst, src in zip(self._cols[table], cols, strict=True):
                dst.extend(src)
            self._msgs[table].extend(group)
            if len(self._cols[table][0]) >= self.insert_rows:
                self._submit(table)

    def run(self, once: bool = False, timeout_s: float | None = None) -> LoaderStats:
        """Consume and load until ``stop()`` (SIGTERM) or, with ``once``, every partition is drained."""
        from confluent_kafka import KafkaError, Message

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
        self._start_worker()
        try:
            while not self.stop_event.is_set():
                if timeout_s is not None and time.monotonic() - t0 > timeout_s:
                    self.stats.stopped_by = "timeout"
                    break
                msgs = cons.consume(num_messages=min(self.consume_max, self.batch_rows), timeout=0.2)
                errors = [m for m, e in zip(msgs, map(Message.error, msgs), strict=True) if e is not None]
                self._take([m for m in msgs if m.error() is None] if errors else msgs, prod)
                for msg in errors:
                    err = msg.error()
                    if err is None:
                        continue
                    if err.code() == KafkaError._PARTITION_EOF:
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
        except BaseException:
            self.stop_event.set()  # an insert still retrying gives up; nothing more is committed
            raise
        finally:
            self._stop_worker()
            cons.close()
            prod.flush(self.settings.kafka.timeout_s)
            self.stats.elapsed_s = time.monotonic() - t0
        return self.stats

    def stop(self) -> None:
        self.stop_event.set()
