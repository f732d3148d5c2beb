"""Repair of missed minute bars from the aggregates REST endpoint, across reconnects and restarts.

The feed does not replay what a client missed. Each ticker remembers the start of the last minute bar it
received and the connection that brought it. When its next bar arrives on a newer connection, every
minute strictly between the two is fetched from REST; at start the last bar of each ticker is read from
the tail of the topic (``Resume``), and the first streamed bar of a ticker repairs from there. Windows
are capped at ``lookback_ms``. Requests run concurrently, at most ``concurrency`` at a time, and
repaired bars go to the same topic with the same key, identity and record mapping as streamed ones,
with the header ``rtfin-origin: rest``. A failed repair is logged and counted, never fatal: the stream
goes on and ``rtfin gaps --repair`` can close the hole later.

Second aggregates (``A``) have no REST counterpart and are never repaired.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from rtfin_cli.errors import RtfinError
from rtfin_cli.sources.aggs import MINUTE_MS, AggsClient

if TYPE_CHECKING:
    from rtfin_cli.settings import KafkaSettings

log = logging.getLogger("rtfin.producers.repair")
ORIGIN_HEADER = "rtfin-origin"
ORIGIN_REST = b"rest"
TAIL_WINDOW_MS = 15 * MINUTE_MS  # how far back from the topic's newest record the start-up read goes

# emit(ticker, REST result) -> True when the bar was produced
Emit = Callable[[str, dict[str, Any]], bool]


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


class Repairer:
    """Watches streamed minute bars for holes left by a reconnect or a restart and fills them from REST."""

    def __init__(
        self,
        client: AggsClient,
        emit: Emit,
        concurrency: int = 8,
        lookback_ms: int = 4 * 86_400_000,
        resume: Resume | None = None,
    ) -> None:
        self.client, self.emit, self.lookback_ms = client, emit, lookback_ms
        self.resume = resume or Resume()
        self._sem = asyncio.Semaphore(max(1, concurrency))
        self._last: dict[str, _Last] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self.windows = 0  # repairs started
        self.repaired = 0  # bars produced from REST
        self.failed = 0  # repairs that gave up (the hole stays until `rtfin gaps --repair`)

    def observe(self, sym: str, s: int, conn: int) -> None:
        """A streamed minute bar of ``sym`` starting at ``s`` arrived on connection number ``conn``."""
        last = self._last.get(sym)
        if last is None:
            start = self.resume.last_s.get(sym, self.resume.default_ms)
            if start is not None and s - start > MINUTE_MS:
                self._schedule(sym, start + MINUTE_MS, s - MINUTE_MS)
            self._last[sym] = _Last(s, conn)
            return
        if last.conn != conn and s - last.s > MINUTE_MS:
            self._schedule(sym, last.s + MINUTE_MS, s - MINUTE_MS)
        if s >= last.s:
            last.s, last.conn = s, conn

    @property
    def pending(self) -> int:
        return len(self._tasks)

    def _schedule(self, sym: str, from_ms: int, to_ms: int) -> None:
        from_ms = max(from_ms, to_ms - self.lookback_ms)
        self.windows += 1
        task = asyncio.ensure_future(self._repair(sym, from_ms, to_ms))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _repair(self, sym: str, from_ms: int, to_ms: int) -> None:
        async with self._sem:
            try:
                bars = await self.client.minute_bars(sym, from_ms, to_ms)
            except RtfinError as exc:
                self.failed += 1
                log.warning("repair of %s %d..%d failed: %s", sym, from_ms, to_ms, exc)
                return
        n = sum(1 for bar in bars if from_ms <= bar.get("t", -1) <= to_ms and self.emit(sym, bar))
        self.repaired += n
        log.info("repaired %d minute bar(s) of %s from REST (%d..%d)", n, sym, from_ms, to_ms)

    async def drain(self, timeout: float) -> None:
        """Wait up to ``timeout`` seconds for running repairs; cancel (and count as failed) the rest."""
        if not self._tasks:
            return
        _, late = await asyncio.wait(set(self._tasks), timeout=timeout)
        for task in late:
            task.cancel()
        self.failed += len(late)

    def as_dict(self) -> dict[str, int]:
        return {"repair_windows": self.windows, "repaired": self.repaired, "repair_failed": self.failed}


def read_resume(kafka: KafkaSettings, topic: str, window_ms: int = TAIL_WINDOW_MS) -> Resume:
    """Each ticker's newest minute bar among the topic's records of the last ``window_ms`` before its
    newest record; an empty topic gives an empty Resume (nothing to repair at start)."""
    from confluent_kafka import TopicPartition

    from rtfin_cli.kafka import clients

    c = clients.consumer(kafka, group="rtfin-stocks-resume", **{"enable.partition.eof": True})
    try:
        parts = sorted(c.list_topics(topic, timeout=kafka.timeout_s).topics[topic].partitions)
        marks = {p: c.get_watermark_offsets(TopicPartition(topic, p), timeout=kafka.timeout_s) for p in parts}
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
    """(value, timestamp) of the records in [begin, end) of each partition."""
    from confluent_kafka import KafkaError, TopicPartition

    todo = {p for p in begin if begin[p] < end.get(p, 0)}
    if not todo:
        return []
    c.assign([TopicPartition(topic, p, begin[p]) for p in todo])
    out: list[tuple[bytes | None, int]] = []
    deadline = time.monotonic() + 60
    while todo and time.monotonic() < deadline:
        for msg in c.consume(num_messages=5000, timeout=1.0):
            p = msg.partition()
            if msg.error():
                if msg.error().code() == KafkaError._PARTITION_EOF:
                    todo.discard(p)
                continue
            if msg.offset() < end.get(p, 0):
                out.append((msg.value(), msg.timestamp()[1]))
            if msg.offset() >= end.get(p, 0) - 1:
                todo.discard(p)
    c.unassign()
    return out
