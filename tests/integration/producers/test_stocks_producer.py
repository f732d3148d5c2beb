"""`rtfin produce stocks` (a real process) against the replay server's WebSocket and the real Kafka broker."""

from __future__ import annotations

import json
import time
from collections import Counter
from pathlib import Path

import pytest

from rtfin_cli.local.market.service import MarketServer
from rtfin_cli.settings import KafkaSettings
from tests.conftest import run_cli
from tests.integration.producers.conftest import (
    cli_env,
    output,
    read_topic,
    start_stocks,
    stop,
    topic_count,
    wait_until,
)

TICKERS = "AAPL,MSFT,NVDA,JPM,XOM"


def _subscribed(market: MarketServer, n: int = 1) -> bool:
    st = market.control("status")
    return st["connections"] >= n and bool(st["subscriptions"])


def test_every_bar_exactly_once_across_a_dropped_socket_and_malformed_frames(
    kafka: KafkaSettings, market: MarketServer, tmp_path: Path
) -> None:
    proc = start_stocks(cli_env(kafka, market, tmp_path), "--tickers", TICKERS)
    try:
        wait_until(lambda: _subscribed(market) or proc.poll() is not None, 60, "the producer to subscribe")
        assert proc.poll() is None, output(proc)
        # 3 market hours from the open, with faults in the middle
        market.control("clock", {"speed": 600, "end_in_s": 3 * 3600 + 300})
        wait_until(lambda: market.control("status")["emitted"]["bars"] >= 150, 60, "bars to flow")
        market.control("faults", {"malformed_frames": 5})
        wait_until(
            lambda: market.control("status")["counters"]["malformed_sent"] >= 5, 60, "malformed frames"
        )
        dropped = market.control("faults", {"drop_ws": True})["dropped"]
        assert dropped == 1
        wait_until(
            lambda: _subscribed(market) and market.control("status")["counters"]["connections"] >= 2,
            30,
            "the producer to reconnect and resubscribe",
        )
        wait_until(lambda: market.control("status")["finished"], 60, "the replay window to pass")
        emitted = market.control("emitted")
        wait_until(
            lambda: topic_count(kafka, kafka.topics.stocks_aggs) >= len(emitted["bars"]),
            30,
            "every emitted bar in the topic",
        )
    finally:
        code, out, err = stop(proc, 30)
    assert code == 0, err
    stats = json.loads(out.strip().splitlines()[-1])
    assert stats["reconnects"] >= 1 and stats["failed"] == 0

    records = read_topic(kafka, kafka.topics.stocks_aggs)
    keys = [f"{r['value']['ev']}|{r['value']['sym']}|{r['value']['s']}" for r in records]
    assert not [k for k, n in Counter(keys).items() if n > 1], "duplicated bars"
    streamed = {k for k, r in zip(keys, records, strict=True) if r["headers"].get("rtfin-origin") != "rest"}
    assert streamed == set(emitted["bars"]) and len(keys) >= 150
    assert stats["repaired"] == len(keys) - len(streamed)  # the minutes missed around the drop, from REST
    for r in records[:20]:
        v = r["value"]
        assert (
            r["key"] == v["sym"] and r["ts"] == v["e"] and v["ev"] == "AM" and v["sym"] in TICKERS.split(",")
        )
        assert set(v) == {
            "ev",
            "sym",
            "s",
            "e",
            "o",
            "h",
            "l",
            "c",
            "v",
            "vw",
            "av",
            "op",
            "a",
            "z",
            "dv",
            "dav",
            "otc",
            "ingested_at",
        }
        assert v["l"] <= min(v["o"], v["c"]) <= max(v["o"], v["c"]) <= v["h"]

    dlq = read_topic(kafka, kafka.topics.dlq)
    assert len(dlq) >= 5  # one per bad frame, one per bad event inside a frame
    for r in dlq:
        assert r["headers"]["rtfin-source"] == "polygon.stocks" and r["headers"]["rtfin-stage"] == "produce"
        assert r["headers"]["rtfin-error"]
    assert any(r["value"] == b"this is not json {" for r in dlq)  # the raw payload as received


@pytest.mark.parametrize(
    ("fault", "status"), [("auth_fail", "auth_failed"), ("max_connections", "max_connections")]
)
def test_final_statuses_exit_clearly_without_a_reconnect_storm(
    kafka: KafkaSettings, market: MarketServer, tmp_path: Path, fault: str, status: str
) -> None:
    market.control("faults", {fault: True})
    t0 = time.monotonic()
    out = run_cli("produce", "stocks", env=cli_env(kafka, market, tmp_path), timeout=60)
    assert out.returncode == 5, out.stderr
    assert status in out.stderr and "Traceback" not in out.stderr
    if status == "auth_failed":
        assert "POLYGON api key" in out.stderr
    assert market.control("status")["counters"]["connections"] == 1
    assert time.monotonic() - t0 < 30


def test_unreachable_server_gives_up_with_a_clear_error(kafka: KafkaSettings, tmp_path: Path) -> None:
    from rtfin_cli.local.supervisor import free_port

    dead = MarketServer(data_dir=tmp_path, port=free_port())  # never started
    env = cli_env(kafka, dead, tmp_path, max_retries=2)
    out = run_cli("produce", "stocks", env=env, timeout=60)
    assert out.returncode == 4, out.stderr
    assert "unreachable after 3 attempts" in out.stderr and "Traceback" not in out.stderr
