"""`rtfin produce stocks`: WebSocket aggregates into rtfin.stocks.aggs, keyed by ticker, timestamp = ``e``.

Malformed frames and events never stop the stream: each goes to rtfin.dlq with the reason in its headers.
Disconnects never stop it either: the stream reconnects, and the minute bars that ended while it was not
receiving (after a reconnect, or since the topic's last bar at start) are repaired from the aggregates
REST endpoint (``producers.repair``). Second aggregates cannot be repaired.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from rtfin_cli.errors import RtfinError
from rtfin_cli.producers.repair import Repairer, read_resume, rest_emitter
from rtfin_cli.producers.sink import AckPoller, KafkaSink, Stats, Ticker
from rtfin_cli.sources.records import (
    Events,
    InvalidRecord,
    MinuteAgg,
    StatusEvent,
    agg_value,
    dumps_raw,
    encode_event,
    loads,
    now_iso,
)
from rtfin_cli.sources.stocks import StocksStream

if TYPE_CHECKING:
    from rtfin_cli.report import Reporter
    from rtfin_cli.settings import RtfinSettings

log = logging.getLogger("rtfin.producers.stocks")
MINUTE_MS = 60_000
REPAIR_DRAIN_S = 30.0  # on stop, how long running repairs may finish before they are cancelled


class AggHandler:
    """Turns decoded frames into records on the sink; the StocksStream frame callback."""

    def __init__(self, sink: KafkaSink, topic: str, stats: Stats, tick: Ticker) -> None:
        self.sink, self.topic, self.stats, self.tick = sink, topic, stats, tick
        # (ticker, minute start) of each AM bar before it is sent: False when a repair already produced it
        self.observe: Callable[[str, int], bool] | None = None

    def __call__(self, data: Any, raw: str) -> None:
        sink, stats = self.sink, self.stats
        if type(data) is Events:
            self._typed(data, raw)
        elif not isinstance(data, list):
            what = "not JSON" if data is None and raw.strip() != "null" else f"a JSON {type(data).__name__}"
            sink.dead_letter(None, raw, f"frame is {what}, expected a JSON array of events")
        else:
            ingested, topic, send, observe = now_iso(), self.topic, sink.send, self.observe
            newest = stats.last_event_ms or 0
            for ev in data:
                try:
                    sym, end_ms, value = agg_value(ev, ingested)
                except InvalidRecord as exc:
                    if isinstance(ev, dict) and ev.get("ev") == "status":
                        continue  # protocol messages, handled by the stream
                    key = ev.get("sym") if isinstance(ev, dict) and isinstance(ev.get("sym"), str) else None
                    sink.dead_letter(key, dumps_raw(ev), str(exc))
                    continue
                if observe is not None and ev["ev"] == "AM" and not observe(sym, ev["s"]):
                    stats.duplicates += 1  # already produced from REST by a repair
                    continue
                send(topic, sym, value, end_ms)
                if end_ms > newest:
                    newest = end_ms
            stats.last_event_ms = newest or None
        sink.poll()
        self.tick()

    def _typed(self, events: Events, raw: str) -> None:
        """The usual frame, every event already type-checked: set ``ingested_at``, encode, send."""
        ingested, topic, send, observe, stats = (
            now_iso(),
            self.topic,
            self.sink.send,
            self.observe,
            self.stats,
        )
        newest = stats.last_event_ms or 0
        for ev in events:
            if isinstance(ev, StatusEvent):
                continue
            sym, e = ev.sym, ev.e
            if ev.s > e:  # the one check the types do not make: the per-event path names it
                self._loose_one(loads(raw)[events.index(ev)])
                continue
            if observe is not None and type(ev) is MinuteAgg and not observe(sym, ev.s):
                stats.duplicates += 1  # already produced from REST by a repair
                continue
            ev.ingested_at = ingested
            send(topic, sym, encode_event(ev), e)
            if e > newest:
                newest = e
        stats.last_event_ms = newest or None

    def _loose_one(self, ev: Any) -> None:
        """Dead-letter one event that the per-event check refuses, with its reason."""
        try:
            agg_value(ev, "")
        except InvalidRecord as exc:
            self.sink.dead_letter(
                ev.get("sym") if isinstance(ev.get("sym"), str) else None, dumps_raw(ev), str(exc)
            )


async def stream_stocks(
    settings: RtfinSettings,
    channels: list[str],
    stop: asyncio.Event,
    reporter: Reporter | None = None,
    stats: Stats | None = None,
) -> Stats:
    """Stream until ``stop`` is set (flushing before returning); raises on auth failure or lost service.

    ``stats``, when given, is the counter object the stream updates as it goes (a caller can watch it).
    """
    topic = settings.kafka.topics.stocks_aggs
    stats = stats if stats is not None else Stats(source="polygon.stocks")
    tick = Ticker(reporter, stats)
    sink = KafkaSink(settings.kafka, stats, [topic], errors_only=True)
    handler, acks = AggHandler(sink, topic, stats, tick), AckPoller(sink)

    def on_frame(data: Any, raw: str) -> None:
        handler(data, raw)
        acks.arm()

    stream = StocksStream.from_settings(settings.polygon, channels, on_frame)
    repairer = _repairer(settings, channels, sink, topic)
    if repairer is not None:
        handler.observe, stream.on_subscribed = repairer.observe, repairer.subscribed

    def counters() -> None:
        stats.reconnects = stream.reconnects
        stats.extra.update(stream.policy.as_dict())
        if repairer is not None:
            stats.extra.update(repairer.as_dict())

    async def heartbeat() -> None:  # progress and delivery callbacks while the feed is quiet
        while not stop.is_set():
            await asyncio.sleep(0.5)
            counters()
            try:
                sink.poll()
            except RtfinError:
                stop.set()  # a delivery failure: stop streaming, report it below
                raise
            tick()

    counters()
    beat = asyncio.ensure_future(heartbeat())
    try:
        await stream.run(stop)
    finally:
        beat.cancel()
        acks.cancel()
        if repairer is not None:
            await repairer.drain(REPAIR_DRAIN_S)
            repairer.close()
        counters()
        if beat.done() and not beat.cancelled() and beat.exception() is not None:
            raise beat.exception()  # type: ignore[misc]
        sink.flush()
        tick(force=True)
    return stats


def _repairer(settings: RtfinSettings, channels: list[str], sink: KafkaSink, topic: str) -> Repairer | None:
    """The REST repair of minute bars, resuming from the topic's tail; None when no AM channel is streamed."""
    if not any(c.startswith("AM.") for c in channels):
        return None
    from rtfin_cli.sources.aggs import AggsClient

    pol = settings.polygon
    resume = read_resume(settings.kafka, topic)
    log.info(
        "minute-bar repair resumes from the topic: %d ticker(s), oldest start %s",
        len(resume.last_s),
        min(resume.last_s.values(), default=resume.default_ms),
    )
    return Repairer(
        AggsClient(pol),
        rest_emitter(sink, topic),
        concurrency=pol.repair_concurrency,
        lookback_ms=int(pol.repair_lookback_h * 3_600_000),
        resume=resume,
        tickers=None if "AM.*" in channels else [c[3:] for c in channels if c.startswith("AM.")],
    )


def run_stocks(
    settings: RtfinSettings,
    channels: list[str],
    reporter: Reporter | None = None,
    handle_signals: bool = True,
    stats: Stats | None = None,
) -> Stats:
    """Blocking entry point: SIGTERM/SIGINT stop the stream, which then flushes and returns. ``stats``,
    when given, holds the counters even when the stream ends with an error."""

    async def main() -> Stats:
        stop = asyncio.Event()
        if handle_signals:
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, stop.set)
        return await stream_stocks(settings, channels, stop, reporter, stats)

    return asyncio.run(main())
