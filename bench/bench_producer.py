"""`rtfin produce stocks` throughput from the replay server at maximum speed vs. a bare confluent-kafka loop.

One local KRaft broker and one replay server (started here on free ports in a temp dir) serve both sides;
each round of each side runs in a fresh process (``bench.paired.alternate``: 3 alternating rounds, median
per side), producing to topics of its own with the same producer settings (idempotent, acks=all, lz4,
linger). The measured path is the real one: replay server -> WebSocket -> frame decoding and validation ->
KafkaSink -> broker acks, from releasing the replay clock until the broker acknowledged every bar. The
baseline is the least a producer of these records must do: ``json.dumps`` each record (the events the
replay sent, collected once by a plain WebSocket client), ``produce`` it, serve delivery callbacks and
flush. Both count a record once the broker acknowledged it. Before the rounds, one unmeasured round of each
side warms the broker (as ``_warm_and_collect`` warms the replay server): a fresh broker's first produce load
costs it about twice the CPU of later ones, and the producer's first start (its resume read is a consumer with
a group id) makes it create ``__consumer_offsets``, work that runs on into that round's timed window. Round 0
always starts with the measured side, so without the warm-up that side alone paid for both.
"""

from __future__ import annotations

import asyncio
import json
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from bench import Result, paired

ROOT = Path(__file__).resolve().parents[1]
DAYS = 1  # trading days replayed per round: 390 minutes x 100 tickers = 39,000 minute bars
ROUNDS = 3
GOAL = 0.9


def _settings(bootstrap: str, market_url: str, ws_url: str):  # type: ignore[no-untyped-def]
    """Settings with topics of their own (each round writes to fresh topics), created on the broker."""
    from rtfin_cli.kafka.admin import create_topics
    from rtfin_cli.settings import KafkaSettings, PolygonSettings, RtfinSettings, TopicSettings

    p = f"b{uuid.uuid4().hex[:6]}"
    topics = TopicSettings(
        news_raw=f"{p}.news", stocks_aggs=f"{p}.aggs", news_sentiment=f"{p}.sent", dlq=f"{p}.dlq"
    )
    settings = RtfinSettings(
        kafka=KafkaSettings(bootstrap=bootstrap, topics=topics),
        polygon=PolygonSettings(rest_url=market_url, ws_url=ws_url),
    )
    create_topics(settings.kafka)
    return settings


def _market(data_dir: str, port: int):  # type: ignore[no-untyped-def]
    from rtfin_cli.local.market.service import MarketServer

    return MarketServer(data_dir=Path(data_dir), port=port)


async def _warm_and_collect(market, window_s: int, expected: int) -> list[dict[str, Any]]:  # type: ignore[no-untyped-def]
    """Replay the window once with a plain client: warms the server's bar cache, returns the events sent."""
    import websockets

    events: list[dict[str, Any]] = []
    async with websockets.connect(market.ws_url, max_size=None) as ws:
        await ws.recv()
        await ws.send(json.dumps({"action": "auth", "params": "bench"}))
        await ws.recv()
        await ws.send(json.dumps({"action": "subscribe", "params": "AM.*"}))
        await ws.recv()
        market.control("clock", {"speed": 1e9, "end_in_s": window_s})
        while len(events) < expected:
            events += [e for e in json.loads(await ws.recv()) if e.get("ev") == "AM"]
    return events


async def _produce_stocks(settings, market, window_s: int, expected: int) -> float:  # type: ignore[no-untyped-def]
    """Seconds from releasing the replay clock until every bar is acknowledged by the broker."""
    from rtfin_cli.producers.sink import Stats
    from rtfin_cli.producers.stocks import stream_stocks

    stop = asyncio.Event()
    live = Stats(source="polygon.stocks")  # the stream's own counters, watched here as they change
    task = asyncio.ensure_future(stream_stocks(settings, ["AM.*"], stop, stats=live))
    while not market.control("status")["subscriptions"]:
        if task.done():
            task.result()  # the stream ended before subscribing: raise its error
        await asyncio.sleep(0.05)
    t0 = time.perf_counter()
    market.control("clock", {"speed": 1e9, "end_in_s": window_s})
    while live.delivered < expected:
        if task.done():
            task.result()
        await asyncio.sleep(0.002)
    elapsed = time.perf_counter() - t0
    stop.set()
    stats = await task
    assert stats.delivered == expected and stats.dead_lettered == 0, stats.as_dict()
    return elapsed


def producer_side(
    bootstrap: str, data_dir: str, port: int, back: str, window_s: int, expected: int, **_: Any
) -> dict[str, float]:
    """One round of `rtfin produce stocks` (run in a fresh process by ``paired.alternate``)."""
    market = _market(data_dir, port)
    settings = _settings(bootstrap, market.url, market.ws_url)
    market.control("clock", {"speed": 0, "goto": back, "end": "dataset"})
    market.control("reset", {})
    elapsed = asyncio.run(_produce_stocks(settings, market, window_s, expected))
    return {"msgs_per_s": expected / elapsed, "elapsed_s": elapsed}


def bare_side(bootstrap: str, data_dir: str, port: int, events_file: str, **_: Any) -> dict[str, float]:
    """One round of a bare confluent-kafka loop producing the same records (same producer config)."""
    from rtfin_cli.kafka import clients

    market = _market(data_dir, port)
    settings = _settings(bootstrap, market.url, market.ws_url)
    topic = settings.kafka.topics.stocks_aggs
    events = json.loads(Path(events_file).read_text())
    records = [
        {k: e.get(k) for k in ("ev", "sym", "s", "e", "o", "h", "l", "c", "v", "vw", "av", "a", "z")}
        | {"otc": False, "ingested_at": "2026-01-01T00:00:00.000Z"}
        for e in events
    ]
    producer = clients.producer(settings.kafka)
    producer.list_topics(topic, timeout=10)
    acked = [0]

    def cb(err, msg) -> None:  # type: ignore[no-untyped-def]
        if err is None:
            acked[0] += 1

    t0 = time.perf_counter()
    for r in records:
        while True:
            try:
                producer.produce(
                    topic,
                    json.dumps(r, separators=(",", ":")).encode(),
                    r["sym"].encode(),
                    timestamp=r["e"],
                    on_delivery=cb,
                )
                break
            except BufferError:
                producer.poll(0.05)
        producer.poll(0)
    producer.flush(60)
    elapsed = time.perf_counter() - t0
    assert acked[0] == len(records)
    return {"msgs_per_s": len(records) / elapsed, "elapsed_s": elapsed}


def run() -> list[Result]:
    from rtfin_cli.local.kafka import KafkaBroker
    from rtfin_cli.local.market import dataset as ds
    from rtfin_cli.local.market.service import MarketServer
    from rtfin_cli.local.supervisor import free_port

    window_s = DAYS * 86400  # starts one minute before day 3's open, so exactly DAYS sessions pass
    expected = DAYS * ds.SESSION_MINUTES * len(ds.tickers())
    start = ds.iso(ds.trading_days()[2] - ds.MINUTE_MS)
    with tempfile.TemporaryDirectory(prefix="rtfin-bench-") as tmp:
        broker = KafkaBroker(
            data_dir=Path(tmp), cache_dir=ROOT / ".cache", port=free_port(), controller_port=free_port()
        )
        market = MarketServer(data_dir=Path(tmp), port=free_port(), speed=0, start_at=start)
        broker.start(timeout=180)
        market.start()
        try:
            events = asyncio.run(_warm_and_collect(market, window_s, expected))
            events_file = Path(tmp) / "events.json"
            events_file.write_text(json.dumps(events))
            back = ds.iso(ds.parse_ms(start) + market.control("status")["shift_ms"])
            sides = ("bench.bench_producer:producer_side", "bench.bench_producer:bare_side")
            common = {
                "bootstrap": broker.bootstrap, "data_dir": tmp, "port": market.port, "back": back,
                "window_s": window_s, "expected": expected, "events_file": str(events_file),
            }  # fmt: skip
            for side in sides:  # the warm-up round, not measured
                paired.in_fresh_process(side, **common)
            value, base, seen = paired.alternate(*sides, "msgs_per_s", rounds=ROUNDS, **common)
        finally:
            market.stop()
            broker.stop()
    return [
        Result(
            "producer.stocks_msgs_per_s",
            value,
            "msg/s",
            base,
            "bare confluent-kafka loop",
            f">= {GOAL}",
            {
                "records": expected,
                "rounds": ROUNDS,
                "producer_s": [round(r["elapsed_s"], 3) for r in seen if r["side"] == "value"],
                "bare_s": [round(r["elapsed_s"], 3) for r in seen if r["side"] == "baseline"],
            },
            goal=GOAL,
        ),
    ]
