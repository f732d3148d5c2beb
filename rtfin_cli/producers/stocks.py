"""`rtfin produce stocks`: WebSocket aggregates into rtfin.stocks.aggs, keyed by ticker, timestamp = ``e``.

Malformed frames and events never stop the stream: each goes to rtfin.dlq with the reason in its headers.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from typing import TYPE_CHECKING, Any

from rtfin_cli.errors import RtfinError
from rtfin_cli.producers.sink import KafkaSink, Stats, Ticker
from rtfin_cli.sources.records import InvalidRecord, agg_value, dumps_raw, now_iso
from rtfin_cli.sources.stocks import StocksStream

if TYPE_CHECKING:
    from rtfin_cli.report import Reporter
    from rtfin_cli.settings import RtfinSettings

log = logging.getLogger("rtfin.producers.stocks")


class AggHandler:
    """Turns decoded frames into records on the sink; the StocksStream frame callback."""

    def __init__(self, sink: KafkaSink, topic: str, stats: Stats, tick: Ticker) -> None:
        self.sink, self.topic, self.stats, self.tick = sink, topic, stats, tick

    def __call__(self, data: Any, raw: str) -> None:
        sink, stats = self.sink, self.stats
        if not isinstance(data, list):
            what = "not JSON" if data is None and raw.strip() != "null" else f"a JSON {type(data).__name__}"
            sink.dead_letter(None, raw, f"frame is {what}, expected a JSON array of events")
        else:
            ingested, topic, send = now_iso(), self.topic, sink.send
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
                send(topic, sym, value, end_ms)
                if end_ms > newest:
                    newest = end_ms
            stats.last_event_ms = newest or None
        sink.poll()
        self.tick()


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
    sink = KafkaSink(settings.kafka, stats, [topic])
    stream = StocksStream.from_settings(settings.polygon, channels, AggHandler(sink, topic, stats, tick))

    async def heartbeat() -> None:  # progress and delivery callbacks while the feed is quiet
        while not stop.is_set():
            await asyncio.sleep(0.5)
            stats.reconnects = stream.reconnects
            try:
                sink.poll()
            except RtfinError:
                stop.set()  # a delivery failure: stop streaming, report it below
                raise
            tick()

    beat = asyncio.ensure_future(heartbeat())
    try:
        await stream.run(stop)
    finally:
        beat.cancel()
        stats.reconnects = stream.reconnects
        if beat.done() and not beat.cancelled() and beat.exception() is not None:
            raise beat.exception()  # type: ignore[misc]
        sink.flush()
        tick(force=True)
    return stats


def run_stocks(
    settings: RtfinSettings,
    channels: list[str],
    reporter: Reporter | None = None,
    handle_signals: bool = True,
) -> Stats:
    """Blocking entry point: SIGTERM/SIGINT stop the stream, which then flushes and returns."""

    async def main() -> Stats:
        stop = asyncio.Event()
        if handle_signals:
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, stop.set)
        return await stream_stocks(settings, channels, stop, reporter)

    return asyncio.run(main())
