"""Repair of missed minute bars from the aggregates REST endpoint, across reconnects and restarts.

The feed does not replay what a client missed. Each ticker remembers the start of the newest minute bar
produced for it (streamed or repaired) and the connection that brought it; at start that is read from the
tail of the topic (``Resume``). On every subscribe (``subscribed``: at start and after each reconnect)
every served ticker (the explicit tickers, or every ticker seen so far and in the topic's tail) is
repaired at once from its newest minute on, without waiting for its next bar: REST returns the minutes
that have ended, and the repair keeps those before the first minute the new connection streamed (the feed
sends minutes in order, so that is where the new stream begins). When REST answers before the new stream
has sent anything, every minute it returned is produced and the stream's copies of them are skipped
(``observe`` returns False). A ticker first seen on a connection repairs from the topic's tail up to its
first bar, and a ticker's next bar on a newer connection that was not repaired at its subscribe repairs
the minutes strictly between. Windows are capped at ``lookback_ms``. Requests run on ``concurrency``
worker threads, and repaired bars go to the same topic with the same key, identity and record mapping as
streamed ones, with the header ``rtfin-origin: rest``. A failed repair is logged and counted, never
fatal: the stream goes on and ``rtfin gaps --repair`` can close the hole later.

Second aggregates (``A``) have no REST counterpart and are never repaired.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

import msgspec

from rtfin_cli.errors import RtfinError, ServiceUnavailable
from rtfin_cli.kafka.clients import read_range
from rtfin_cli.sources.aggs import MINUTE_MS, AggsClient, Bar

if TYPE_CHECKING:
    from rtfin_cli.producers.sink import KafkaSink
    from rtfin_cli.settings import KafkaSettings, RtfinSettings

log = logging.getLogger("rtfin.producers.repair")
ORIGIN_HEADER = "rtfin-origin"
ORIGIN_REST = b"rest"
TAIL_WINDOW_MS = 15 * MINUTE_MS  # how far back from the topic's newest record the start-up read goes
STREAM_START_WAIT_S = 1.0  # how long a subscribe's repair waits for the new stream's first minute

# emit(ticker, REST results) -> how many were produced (the others were dead-lettered)
Emit = Callable[[str, list[Bar | dict[str, Any]]], int]


@dataclass
class Resume:
    """Where each ticker's stream stopped last time: the start (ms) of its newest minute bar in the topic.
    ``default_ms`` covers tickers not in the read tail (the oldest minute the read reached)."""

    last_s: dict[str, int] = field(default_factory=dict)
    default_ms: int | None = None


@dataclass
class _Last:
    s: int
    conn: int


@dataclass
class _Until:
    """Where the stream of one subscribe begins: the first minute it sent (None until it sends one)."""

    first: int | None = None
    begun: asyncio.Event = field(default_factory=asyncio.Event)


class Repairer:
    """Watches streamed minute bars for holes left by a reconnect or a restart and fills them from REST."""

    def __init__(
        self,
        client: AggsClient,
        emit: Emit,
        concurrency: int = 8,
        lookback_ms: int = 4 * 86_400_000,
        resume: Resume | None = None,
        tickers: list[str] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.client, self.emit, self.lookback_ms = client, emit, lookback_ms
        self.resume = resume or Resume()
        self.tickers = tickers  # the served tickers; None: every ticker seen (a ``*`` subscription)
        self.clock = clock  # wall seconds: the lookback of a subscribe's repair counts back from it
        self._pool = ThreadPoolExecutor(max(1, concurrency), thread_name_prefix="rtfin-repair")
        self._last: dict[str, _Last] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self.conn = 0  # the current connection, as ``subscribed`` was told
        self._open: list[_Until] = []  # subscribes whose stream has not sent a minute yet
        self._skip: dict[
            str, int
        ] = {}  # ticker -> newest minute produced from REST that the stream may repeat
        self._rest_newest: dict[str, int] = {}  # ticker -> newest minute a subscribe's repair produced
        self._locks: dict[str, asyncio.Lock] = {}  # one subscribe repair of a ticker at a time, in order
        self.windows = 0  # repairs started
        self.repaired = 0  # bars produced from REST
        self.failed = 0  # repairs that gave up (the hole stays until `rtfin gaps --repair`)

    def observe(self, sym: str, s: int, conn: int | None = None) -> bool:
        """A streamed minute bar of ``sym`` starting at ``s`` arrived on connection number ``conn`` (default:
        the current one). False when a repair already produced it (the caller does not send it again)."""
        if self._open:  # the first minute streamed since these subscribes: their repairs stop before it
            for until in self._open:
                until.first = s
                until.begun.set()
            self._open.clear()
        if self._skip and sym in self._skip:
            if s <= self._skip[sym]:
                return False
            del self._skip[sym]
        conn = self.conn if conn is None else conn
        last = self._last.get(sym)
        if last is None:
            start = self.resume.last_s.get(sym, self.resume.default_ms)
            if start is not None and s - start > MINUTE_MS:
                self._schedule(sym, start + MINUTE_MS, s - MINUTE_MS)
            self._last[sym] = _Last(s, conn)
            return True
        if last.conn != conn and s - last.s > MINUTE_MS:
            self._schedule(sym, last.s + MINUTE_MS, s - MINUTE_MS)
        if s >= last.s:
            last.s, last.conn = s, conn
        return True

    def subscribed(self, conn: int) -> None:
        """Connection ``conn`` subscribed: repair every served ticker from its newest minute on, now."""
        self.conn, until = conn, _Until()
        self._open.append(until)
        served = self.tickers if self.tickers is not None else [*self._last, *self.resume.last_s]
        for sym in dict.fromkeys(served):
            last = self._last.get(sym)
            if last is None:
                start = self.resume.last_s.get(sym, self.resume.default_ms)
                if start is None:
                    continue  # an empty topic: nothing known to repair from
                last = self._last[sym] = _Last(start, conn)
            last.conn = conn
            self.windows += 1
            self._track(self._repair_since(sym, last.s + MINUTE_MS, until))

    @property
    def pending(self) -> int:
        return len(self._tasks)

    def _schedule(self, sym: str, from_ms: int, to_ms: int) -> None:
        self.fetch(sym, max(from_ms, to_ms - self.lookback_ms), to_ms)

    def fetch(self, sym: str, from_ms: int, to_ms: int) -> None:
        """Start fetching the minutes ``from_ms``..``to_ms`` (bar starts, inclusive) of ``sym``."""
        self.windows += 1
        self._track(self._repair(sym, from_ms, to_ms))

    def _track(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _fetch(self, sym: str, from_ms: int, to_ms: int) -> list[Bar | dict[str, Any]] | None:
        """The REST bars of ``sym`` starting in [from_ms, to_ms]; None (counted, logged) when it failed."""
        loop = asyncio.get_running_loop()
        try:
            bars = await loop.run_in_executor(self._pool, self.client.minute_bars, sym, from_ms, to_ms)
        except RtfinError as exc:
            self.failed += 1
            log.warning("repair of %s %d..%d failed: %s", sym, from_ms, to_ms, exc)
            return None
        return [b for b in bars if from_ms <= (b.t if type(b) is Bar else _start(b)) <= to_ms]

    async def _repair(self, sym: str, from_ms: int, to_ms: int) -> None:
        bars = await self._fetch(sym, from_ms, to_ms)
        if bars is not None:
            n = self.emit(sym, bars)
            self.repaired += n
            log.info("repaired %d minute bar(s) of %s from REST (%d..%d)", n, sym, from_ms, to_ms)

    async def _repair_since(self, sym: str, from_ms: int, until: _Until) -> None:
        """A subscribe's repair of ``sym``: every ended minute from ``from_ms`` to where the new stream began.

        The window is open-ended (REST returns only minutes that have ended); the lookback counts back from
        the wall clock, a live feed's clock (a replay's runs ahead of it)."""
        async with self._locks.setdefault(sym, asyncio.Lock()):  # after an earlier subscribe's repair of it
            now = int(self.clock() * 1000)
            lo = max(from_ms, self._rest_newest.get(sym, 0) + MINUTE_MS, now - self.lookback_ms)
            bars = await self._fetch(sym, lo, max(lo, now) + self.lookback_ms)
            if bars is None:
                return
            if until.first is None:  # a moment for the new stream to begin: a minute that both REST and the
                with contextlib.suppress(TimeoutError):  # stream have then goes out as the stream's
                    await asyncio.wait_for(until.begun.wait(), STREAM_START_WAIT_S)
            first = until.first
            bars = [b for b in bars if first is None or (b.t if type(b) is Bar else _start(b)) < first]
            n = self.emit(sym, bars)
            self.repaired += n
            if bars:
                newest = max(b.t if type(b) is Bar else _start(b) for b in bars)
                self._rest_newest[sym] = newest
                if first is None:  # the new stream has not begun: it may still send some of these
                    self._skip[sym] = max(newest, self._skip.get(sym, newest))
                last = self._last[sym]
                last.s = max(last.s, newest)
            log.info("repaired %d minute bar(s) of %s from REST since %d", n, sym, lo)

    async def drain(self, timeout: float) -> None:
        """Wait up to ``timeout`` seconds for running repairs; cancel (and count as failed) the rest."""
        if self._tasks:
            _, late = await asyncio.wait(set(self._tasks), timeout=timeout)
            for task in late:
                task.cancel()
            self.failed += len(late)

    def close(self) -> None:
        """Stop the worker threads (a request in flight gives up at its next retry) and the client."""
        self._pool.shutdown(wait=False, cancel_futures=True)
        self.client.close()

    def as_dict(self) -> dict[str, int]:
        return {"repair_windows": self.windows, "repaired": self.repaired, "repair_failed": self.failed}


def _start(bar: Bar | dict[str, Any]) -> int:
    t = bar.t if isinstance(bar, Bar) else bar.get("t")
    return t if isinstance(t, int) else -1


def read_resume(kafka: KafkaSettings, topic: str, window_ms: int = TAIL_WINDOW_MS) -> Resume:
    """Each ticker's newest minute bar among the topic's records of the last ``window_ms`` before its
    newest record; an empty topic gives an empty Resume (nothing to repair at start)."""
    from confluent_kafka import TopicPartition

    from rtfin_cli.kafka import clients

    c = clients.consumer(kafka, group="rtfin-stocks-resume", **{"enable.partition.eof": True})
    try:
        parts = sorted(c.list_topics(topic, timeout=kafka.timeout_s).topics[topic].partitions)
        marks = {p: _watermarks(c, TopicPartition(topic, p), kafka.timeout_s) for p in parts}
        filled = {p: marks[p][1] for p in parts if marks[p][1] > marks[p][0]}
        if not filled:
            return Resume()
        newest = max(ts for _, ts in _records(c, topic, {p: hi - 1 for p, hi in filled.items()}, filled))
        since = newest - window_ms
        found = c.offsets_for_times(
            [TopicPartition(topic, p, since) for p in filled], timeout=kafka.timeout_s
        )
        begin = {tp.partition: tp.offset for tp in found if tp.offset >= 0}
        last: dict[str, int] = {}
        for value, _ in _records(c, topic, begin, filled):
            ev = _am_start(value)
            if ev is not None and ev[1] > last.get(ev[0], -1):
                last[ev[0]] = ev[1]
        return Resume(last, since // MINUTE_MS * MINUTE_MS)
    finally:
        c.close()


def _watermarks(c: Any, tp: Any, timeout_s: float) -> tuple[int, int]:
    """A partition's (low, high) offsets, retried while the broker answers with a transient error (a new
    topic's partitions have no leader for a moment); ServiceUnavailable when it lasts ``timeout_s``."""
    from confluent_kafka import KafkaError, KafkaException

    transient = {KafkaError.NOT_LEADER_FOR_PARTITION, KafkaError.LEADER_NOT_AVAILABLE, KafkaError._TIMED_OUT}
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            low, high = c.get_watermark_offsets(tp, timeout=timeout_s)
            return int(low), int(high)
        except KafkaException as exc:
            err = exc.args[0]
            if not (err.retriable() or err.code() in transient) or time.monotonic() > deadline:
                raise ServiceUnavailable(
                    f"cannot read where {tp.topic} [{tp.partition}] ends: {err.str()}",
                    "Check the broker and the topic (`rtfin topics describe`).",
                ) from None
            time.sleep(0.2)


def _am_start(value: bytes | None) -> tuple[str, int] | None:
    try:
        rec = json.loads(value or b"")
    except ValueError:
        return None
    if isinstance(rec, dict) and rec.get("ev") == "AM" and isinstance(rec.get("s"), int):
        return str(rec.get("sym")), int(rec["s"])
    return None


def _records(
    c: Any, topic: str, begin: dict[int, int], end: dict[int, int]
) -> list[tuple[bytes | None, int]]:
    """(value, timestamp) of the records in [begin, end) of each partition (unreadable ones skipped)."""
    return [(msg.value(), msg.timestamp()[1]) for msg in read_range(c, topic, begin, end, 60, strict=False)]


def rest_emitter(sink: KafkaSink, topic: str) -> Emit:
    """Produces REST bars as the records their streamed twins would be (same key, identity and mapping),
    with the ``rtfin-origin: rest`` header; a bar the mapping refuses goes to the DLQ. Typed pages (the usual
    case) are encoded in one call per window (``bar_values``); others bar by bar, explained when refused."""
    from rtfin_cli.sources.aggs import am_event, bar_values
    from rtfin_cli.sources.records import InvalidRecord, agg_value, dumps_raw, now_iso

    headers: list[tuple[str, str | bytes | None]] = [(ORIGIN_HEADER, ORIGIN_REST)]  # shared by every record

    def emit(ticker: str, bars: list[Bar | dict[str, Any]]) -> int:
        ingested, records = now_iso(), []
        if ticker and all(type(b) is Bar for b in bars):
            typed = cast("list[Bar]", bars)
            values = bar_values(ticker, typed, ingested)
            sink.send_many(topic, ticker, zip([b.t + MINUTE_MS for b in typed], values, strict=True), headers)
            return len(values)
        for bar in bars:  # a loose page, or no ticker: the record mapping names what it refuses
            raw = msgspec.to_builtins(bar) if isinstance(bar, Bar) else bar
            try:
                _, end_ms, value = agg_value(am_event(ticker, raw), ingested)
            except InvalidRecord as exc:
                sink.dead_letter(ticker, dumps_raw(raw), f"aggregates REST bar: {exc}")
                continue
            records.append((end_ms, value))
        sink.send_many(topic, ticker, records, headers)
        return len(records)

    return emit


def repair_windows(
    settings: RtfinSettings, windows: list[tuple[str, int, int]], concurrency: int | None = None
) -> dict[str, int]:
    """Fetch ``(ticker, from_ms, to_ms)`` windows from REST into the stocks topic (``rtfin gaps --repair``):
    bars produced and windows that failed. ``concurrency`` defaults to ``polygon.repair_concurrency``. The
    broker reports failed deliveries only (a bulk sink); ``flush`` raises if any failed. The sink connects
    (~50 ms) while the first pages load; its topics are checked before anything is produced."""
    from rtfin_cli.producers.sink import KafkaSink, Stats

    topic = settings.kafka.topics.stocks_aggs
    sink = KafkaSink(settings.kafka, Stats(source="polygon.aggs"), [topic], bulk=True, check=False)

    async def main() -> dict[str, int]:
        repairer = Repairer(
            AggsClient(settings.polygon),
            rest_emitter(sink, topic),
            concurrency or settings.polygon.repair_concurrency,
        )
        try:
            for sym, lo, hi in windows:
                repairer.fetch(sym, lo, hi)
            await asyncio.sleep(0)  # the fetch tasks hand their first requests to the worker threads
            sink.check_topics()  # blocks the event loop: no page is emitted before it returns
            while repairer.pending:
                await repairer.drain(3600)
        finally:
            repairer.close()
        return repairer.as_dict()

    counts = asyncio.run(main())
    sink.flush()
    return counts
