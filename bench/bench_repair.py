"""Minute bars repaired per second (`rtfin gaps --repair`'s path) vs a bare `requests` loop over the same URLs.

The measured path is the real one: the aggregates REST client (concurrent, paging, retries) against the
replay server, each bar mapped to its record and produced to Kafka with the repair header, then flushed
(every record acknowledged). The baseline only GETs the same URLs one after another with one
``requests.Session`` and decodes the JSON: the least any repair must do. Both read every ticker's minute
bars of two whole replay sessions. One broker and one replay server (warmed: a bare round, and
``WARMUP`` uncounted repair rounds) serve both sides; each round of each side runs in a fresh process
(``bench.paired.alternate``: 3 alternating rounds, median per side), the repair into topics made for the
run before the first round.
"""

from __future__ import annotations

import os
import tempfile
import time
import uuid
from pathlib import Path

from bench import Result, paired

ROOT = Path(__file__).resolve().parents[1]
ROUNDS = 3
# Repair rounds run before the measured ones: a new broker's JVM compiles its produce path over the first
# rounds (broker CPU per repair round, measured: 0.90, 0.50, 0.41, then 0.27-0.38 s; a long-running broker
# is warm). The bare side does not use the broker.
WARMUP = 3
GOAL = 0.8


def _settings(bootstrap: str, market_url: str, p: str):  # type: ignore[no-untyped-def]
    from rtfin_cli.settings import KafkaSettings, PolygonSettings, RtfinSettings, TopicSettings

    topics = TopicSettings(
        news_raw=f"{p}.news", stocks_aggs=f"{p}.aggs", news_sentiment=f"{p}.sent", dlq=f"{p}.dlq"
    )
    return RtfinSettings(
        kafka=KafkaSettings(bootstrap=bootstrap, topics=topics),
        polygon=PolygonSettings(rest_url=market_url, ws_url=market_url.replace("http", "ws") + "/stocks"),
    )


def _windows(shift: int) -> list[tuple[str, int, int]]:
    from rtfin_cli.local.market import dataset as ds

    lo = ds.trading_days()[2] + shift
    hi = ds.trading_days()[3] + shift + (ds.SESSION_MINUTES - 1) * ds.MINUTE_MS
    return [(t.symbol, lo, hi) for t in ds.tickers()]


def repair_side(bootstrap: str, market_url: str, shift_ms: int, prefix: str) -> dict[str, float]:
    """One round of the repair path (run in a fresh process by ``paired.alternate``) into the topics
    ``run`` created (a topic's creation goes on in the broker after the call returns: 0.04-0.3 CPU-s of it
    landed inside the timed window when each round created its own)."""
    # the client libraries imported before timing, as the bare side's requests is (httpx imports its
    # transport, httpcore, only when the first client is made: 40-80 ms here)
    import confluent_kafka  # noqa: F401
    import httpcore  # noqa: F401
    import httpx  # noqa: F401

    from rtfin_cli.producers import sink  # noqa: F401 - imported by repair_windows when called
    from rtfin_cli.producers.repair import repair_windows

    settings = _settings(bootstrap, market_url, prefix)
    windows = _windows(shift_ms)
    t0 = time.perf_counter()
    counts = repair_windows(settings, windows)
    elapsed = time.perf_counter() - t0
    return {"bars_per_s": counts["repaired"] / elapsed, "elapsed_s": elapsed, "bars": counts["repaired"]}


def bare_side(market_url: str, shift_ms: int, **_: object) -> dict[str, float]:
    """One round of a bare ``requests`` loop over the same URLs."""
    import requests

    from rtfin_cli.sources.aggs import MAX_LIMIT

    n = 0
    t0 = time.perf_counter()
    with requests.Session() as http:
        http.headers["Authorization"] = "Bearer bench"
        for sym, lo, hi in _windows(shift_ms):
            url: str | None = f"{market_url}/v2/aggs/ticker/{sym}/range/1/minute/{lo}/{hi}"
            params: dict[str, str | int] | None = {"adjusted": "true", "sort": "asc", "limit": MAX_LIMIT}
            while url:
                body = http.get(url, params=params, timeout=30).json()
                n += len(body.get("results", []))
                url, params = body.get("next_url"), None
    elapsed = time.perf_counter() - t0
    return {"bars_per_s": n / elapsed, "elapsed_s": elapsed, "bars": n}


def run() -> list[Result]:
    from rtfin_cli.kafka.admin import create_topics
    from rtfin_cli.local.kafka import KafkaBroker
    from rtfin_cli.local.market import dataset as ds
    from rtfin_cli.local.market.service import MarketServer
    from rtfin_cli.local.supervisor import free_port

    with tempfile.TemporaryDirectory(prefix="rtfin-bench-") as tmp:
        broker = KafkaBroker(
            data_dir=Path(tmp), cache_dir=ROOT / ".cache", port=free_port(), controller_port=free_port()
        )
        market = MarketServer(
            data_dir=Path(tmp), port=free_port(), speed=0, start_at=ds.iso(ds.trading_days()[4])
        )
        broker.start(timeout=180)
        market.start()
        try:
            shift = market.control("status")["shift_ms"]
            prefix = f"b{uuid.uuid4().hex[:6]}"
            create_topics(_settings(broker.bootstrap, market.url, prefix).kafka)
            sides = {
                "bootstrap": broker.bootstrap,
                "market_url": market.url,
                "shift_ms": shift,
                "prefix": prefix,
            }
            bare_side(market.url, shift)  # warm the server's day cache for both sides
            for _ in range(WARMUP):  # and the new broker's JVM; not counted
                paired.in_fresh_process("bench.bench_repair:repair_side", **sides)
            load = os.getloadavg()[0]
            value, base, seen = paired.alternate(
                "bench.bench_repair:repair_side",
                "bench.bench_repair:bare_side",
                "bars_per_s",
                rounds=ROUNDS,
                **sides,
            )
        finally:
            market.stop()
            broker.stop()
    n = 2 * ds.SESSION_MINUTES * len(ds.tickers())
    assert all(r["bars"] == n for r in seen), seen
    return [
        Result(
            "repair.minutes_per_s",
            value,
            "bars/s",
            base,
            "bare requests loop",
            f">= {GOAL}",
            {
                "bars": n,
                "rounds": ROUNDS,
                "warmup_rounds": WARMUP,
                "loadavg_1m_at_start": round(load, 2),
                "repair_s": [round(r["elapsed_s"], 3) for r in seen if r["side"] == "value"],
                "bare_s": [round(r["elapsed_s"], 3) for r in seen if r["side"] == "baseline"],
            },
            goal=GOAL,
        )
    ]
