"""Minute bars repaired per second (`rtfin gaps --repair`'s path) vs a bare `requests` loop over the same URLs.

The measured path is the real one: the aggregates REST client (concurrent, paging, retries) against the
replay server, each bar mapped to its record and produced to Kafka with the repair header, then flushed
(every record acknowledged). The baseline only GETs the same URLs one after another with one
``requests.Session`` and decodes the JSON: the least any repair must do. Both read every ticker's minute
bars of two whole replay sessions; rounds alternate and the figure is the ratio of the medians.
"""

from __future__ import annotations

import statistics
import tempfile
import time
import uuid
from pathlib import Path

from bench import Result

ROOT = Path(__file__).resolve().parents[1]
ROUNDS = 3
TARGET = ">= 0.8"


def _settings(bootstrap: str, market_url: str):  # type: ignore[no-untyped-def]
    from rtfin_cli.settings import KafkaSettings, PolygonSettings, RtfinSettings, TopicSettings

    p = f"b{uuid.uuid4().hex[:6]}"
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


def _repair(settings, windows: list[tuple[str, int, int]]) -> tuple[float, int]:  # type: ignore[no-untyped-def]
    from rtfin_cli.producers.repair import repair_windows

    t0 = time.perf_counter()
    counts = repair_windows(settings, windows)
    return time.perf_counter() - t0, counts["repaired"]


def _bare(base: str, windows: list[tuple[str, int, int]]) -> tuple[float, int]:
    import requests

    from rtfin_cli.sources.aggs import MAX_LIMIT

    n = 0
    t0 = time.perf_counter()
    with requests.Session() as http:
        http.headers["Authorization"] = "Bearer bench"
        for sym, lo, hi in windows:
            url: str | None = f"{base}/v2/aggs/ticker/{sym}/range/1/minute/{lo}/{hi}"
            params: dict[str, object] | None = {"adjusted": "true", "sort": "asc", "limit": MAX_LIMIT}
            while url:
                body = http.get(url, params=params, timeout=30).json()
                n += len(body.get("results", []))
                url, params = body.get("next_url"), None
    return time.perf_counter() - t0, n


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
            settings = _settings(broker.bootstrap, market.url)
            create_topics(settings.kafka)
            windows = _windows(market.control("status")["shift_ms"])
            _bare(market.url, windows)  # warm the server's day cache for both sides
            rep, bare = [], []
            for _ in range(ROUNDS):
                rep.append(_repair(settings, windows))
                bare.append(_bare(market.url, windows))
        finally:
            market.stop()
            broker.stop()
    n = rep[0][1]
    assert n == 2 * ds.SESSION_MINUTES * len(ds.tickers()) and all(r[1] == n for r in rep + bare), (rep, bare)
    t_rep, t_bare = statistics.median(t for t, _ in rep), statistics.median(t for t, _ in bare)
    return [
        Result(
            "repair.minutes_per_s",
            n / t_rep,
            "bars/s",
            n / t_bare,
            "bare requests loop",
            TARGET,
            {
                "bars": n,
                "rounds": ROUNDS,
                "repair_s": [round(t, 3) for t, _ in rep],
                "bare_s": [round(t, 3) for t, _ in bare],
            },
        )
    ]
