"""`rtfin produce stocks` against a replay that keeps cutting the WebSocket, and across a SIGKILL: no
minute bar of a served ticker is missing (compared with every bar the replay generated, not only those it
sent) and none is duplicated in the topic. Real Kafka, real replay server, real processes."""

from __future__ import annotations

import contextlib
import json
import signal
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from rtfin_cli.local.market import dataset as ds
from rtfin_cli.local.market.service import MarketServer
from rtfin_cli.settings import KafkaSettings
from tests.conftest import run_cli
from tests.integration.producers.conftest import cli_env, output, read_topic, start_stocks, stop, wait_until

TICKERS = ["AAPL", "MSFT", "NVDA", "JPM", "XOM", "BRK.B"]
SPEED = 60.0  # one replay minute per wall second: a session (390 minutes) outlasts the 5-minute run


def _subscribed(market: MarketServer) -> bool:
    st = market.control("status")
    return st["connections"] >= 1 and bool(st["subscriptions"])


def _dataset_now(market: MarketServer) -> int:
    return ds.parse_ms(market.control("status")["dataset_now"])


def generated(
    market: MarketServer, tickers: list[str], lo: int, hi: int
) -> dict[tuple[str, int], dict[str, Any]]:
    """Every minute bar the replay generated for ``tickers`` that started at or after ``lo`` and ended by
    ``hi`` (dataset ms), keyed (sym, shown s)."""
    shift = market.control("status")["shift_ms"]
    out = {}
    for day, open_ms in enumerate(ds.trading_days()):
        for i in range(ds.SESSION_MINUTES):
            s = open_ms + i * ds.MINUTE_MS
            if s >= lo and s + ds.MINUTE_MS <= hi:
                for bar in ds.day_bars(day)[i]:
                    if bar["sym"] in tickers:
                        out[(bar["sym"], s + shift)] = bar
    return out


def _check_complete(kafka: KafkaSettings, want: dict[tuple[str, int], dict[str, Any]]) -> dict[str, int]:
    records = [r for r in read_topic(kafka, kafka.topics.stocks_aggs) if r["value"]["ev"] == "AM"]
    keys = Counter((r["value"]["sym"], r["value"]["s"]) for r in records)
    missing = sorted(set(want) - set(keys))
    dups = [k for k, n in keys.items() if n > 1]
    assert not missing, f"{len(missing)} minute bars missing, first {missing[:5]}"
    assert not dups, f"{len(dups)} bars duplicated, first {dups[:5]}"
    repaired = [r for r in records if r["headers"].get("rtfin-origin") == "rest"]
    for r in records:
        v, bar = r["value"], want.get((r["value"]["sym"], r["value"]["s"]))
        if bar is not None:  # same values whichever path brought it
            assert [v[f] for f in "ohlcv"] + [v["vw"]] == [bar[f] for f in "ohlcv"] + [bar["vw"]]
            assert r["key"] == v["sym"] and r["ts"] == v["e"] == v["s"] + ds.MINUTE_MS
    return {"bars": len(want), "records": len(records), "repaired": len(repaired)}


def _drop_run(
    kafka: KafkaSettings, market: MarketServer, tmp_path: Path, seconds: float, speed: float = SPEED
) -> dict[str, Any]:
    proc = start_stocks(cli_env(kafka, market, tmp_path), "--tickers", ",".join(TICKERS))
    try:
        wait_until(lambda: _subscribed(market) or proc.poll() is not None, 60, "the producer to subscribe")
        assert proc.poll() is None, output(proc)
        lo = _dataset_now(market)
        market.control("faults", {"cut_ws_every_s": 3, "cut_ws_jitter_s": 7})
        market.control("clock", {"speed": speed})
        deadline = time.monotonic() + seconds
        time.sleep(seconds / 3)  # repairs meet the REST faults too: retried, never given up
        market.control("faults", {"burst_429": 3, "http_5xx": 2, "retry_after": 0.2})
        while time.monotonic() < deadline:
            assert proc.poll() is None, output(proc)
            time.sleep(1)
        cuts = market.control("status")["counters"]["ws_cuts"]
        market.control("faults", {"cut_ws_every_s": 0})
        wait_until(lambda: _subscribed(market), 30, "a last reconnect")
        time.sleep(3)  # bars stream on the last connection (its subscribe already started the repairs)
        market.control("clock", {"speed": 0})
        hi = _dataset_now(market)
        want = generated(market, TICKERS, lo, hi)
        # repairs still queued behind a request that hit polygon.timeout_s (30 s) may take a while; on a
        # timeout the check below names what is missing and what the producer logged
        with contextlib.suppress(AssertionError):
            wait_until(lambda: _complete(kafka, want), 120, "every generated bar in the topic")
        assert proc.poll() is None, "the producer ended during the drops"
    finally:
        code, out, err = stop(proc, 60)
    assert code == 0, err
    stats = json.loads(out.strip().splitlines()[-1])
    try:
        counts = _check_complete(kafka, want)
    except AssertionError as exc:  # what the producer saw, to tell a lost bar from a late one
        raise AssertionError(f"{exc}; producer {stats}; its log ends: {err[-4000:]}") from None
    assert counts["repaired"] == stats["repaired"]
    assert stats["reconnects"] >= cuts >= seconds // 10 and stats["connects"] == stats["reconnects"] + 1, (
        stats
    )
    # every reconnect repairs; a minute comes from REST only when it ended while no stream was subscribed,
    # which a quick reconnect (at speed 120 a minute lasts 0.5 s) may not give
    assert stats["repair_windows"] >= stats["reconnects"] and stats["repair_failed"] == 0, stats
    assert stats["longest_disconnected_s"] < 5, stats  # no backoff builds up across healthy sessions
    return {
        **counts,
        "cuts": cuts,
        **{k: stats[k] for k in ("connects", "reconnects", "longest_disconnected_s")},
    }


def _complete(kafka: KafkaSettings, want: dict[tuple[str, int], dict[str, Any]]) -> bool:
    got = {
        (r["value"]["sym"], r["value"]["s"]) for r in read_topic(kafka, kafka.topics.stocks_aggs, timeout=10)
    }
    return set(want) <= got


def test_drops_every_3_to_10_s_lose_no_minute(
    kafka: KafkaSettings, market: MarketServer, tmp_path: Path
) -> None:
    counts = _drop_run(kafka, market, tmp_path, seconds=30, speed=120)
    print("drop test (30 s):", counts)


@pytest.mark.slow
def test_five_minutes_of_drops_lose_no_minute(
    kafka: KafkaSettings, market: MarketServer, tmp_path: Path
) -> None:
    counts = _drop_run(kafka, market, tmp_path, seconds=300)
    print("drop test (300 s):", counts)
    assert counts["repaired"] > 0, counts  # ~45 cuts: some minutes ended while no stream was subscribed


def test_a_reconnect_repairs_every_ticker_without_waiting_for_a_next_bar(
    kafka: KafkaSettings, market: MarketServer, tmp_path: Path
) -> None:
    """The producer is cut off (SIGSTOP, then the replay closes its socket) while 10 minutes pass, and the
    replay stays paused after it reconnects: no bar follows, yet every minute that ended while it was away
    reaches the topic, once (before, such a hole waited for each ticker's next bar)."""
    proc = start_stocks(cli_env(kafka, market, tmp_path), "--tickers", ",".join(TICKERS))
    try:
        wait_until(lambda: _subscribed(market) or proc.poll() is not None, 60, "the producer to subscribe")
        assert proc.poll() is None, output(proc)
        lo = _dataset_now(market)
        market.control("clock", {"speed": 120})
        time.sleep(5)  # 10 replay minutes: past the open, bars streaming
        market.control("clock", {"speed": 0})
        time.sleep(1)  # the last bars reach the producer
        proc.send_signal(signal.SIGSTOP)
        market.control("faults", {"cut_ws_every_s": 0.1})  # a close frame it cannot answer while stopped
        wait_until(lambda: market.control("status")["counters"]["ws_cuts"] >= 1, 10, "the cut")
        market.control("faults", {"cut_ws_every_s": 0})
        away = ds.parse_ms(market.control("status")["now"]) + 10 * ds.MINUTE_MS
        market.control("clock", {"goto": ds.iso(away)})  # still paused: nothing streams after this
        before = market.control("status")["counters"]["connections"]
        proc.send_signal(signal.SIGCONT)
        wait_until(
            lambda: market.control("status")["counters"]["connections"] > before and _subscribed(market),
            30,
            "the producer to resubscribe",
        )
        want = generated(market, TICKERS, lo, _dataset_now(market))
        assert len(want) >= 10 * len(TICKERS)
        wait_until(lambda: _complete(kafka, want), 30, "the missed minutes repaired without a next bar")
    finally:
        proc.send_signal(signal.SIGCONT)
        code, out, err = stop(proc, 60)
    assert code == 0, err
    stats = json.loads(out.strip().splitlines()[-1])
    counts = _check_complete(kafka, want)
    assert stats["repaired"] == counts["repaired"] >= 10 * len(TICKERS) and stats["repair_failed"] == 0, stats


def _kill_run(kafka: KafkaSettings, market: MarketServer, tmp_path: Path, down_s: float) -> dict[str, Any]:
    env = cli_env(kafka, market, tmp_path)
    args = ("--tickers", ",".join(TICKERS))
    proc = start_stocks(env, *args)
    wait_until(lambda: _subscribed(market) or proc.poll() is not None, 60, "the producer to subscribe")
    lo = _dataset_now(market)
    market.control("clock", {"speed": SPEED})
    time.sleep(8)
    proc.kill()  # SIGKILL: no flush, records in flight are lost
    stop(proc, 10)
    time.sleep(down_s)
    before = market.control("status")["counters"]["connections"]
    proc = start_stocks(env, *args)
    try:
        wait_until(
            lambda: market.control("status")["counters"]["connections"] > before and _subscribed(market),
            60,
            "the restarted producer to subscribe",
        )
        time.sleep(5)  # bars stream again (its subscribe already started the repair of each ticker)
        market.control("clock", {"speed": 0})
        hi = _dataset_now(market)
        want = generated(market, TICKERS, lo, hi)
        deadline = time.monotonic() + 60
        while not _complete(kafka, want) and time.monotonic() < deadline:
            time.sleep(1)
    finally:
        code, out, err = stop(proc, 60)
    assert code == 0, err
    stats = json.loads(out.strip().splitlines()[-1])
    assert stats["repaired"] > 0 and stats["repair_failed"] == 0, (stats, err[-3000:])
    records = [r for r in read_topic(kafka, kafka.topics.stocks_aggs) if r["value"]["ev"] == "AM"]
    keys = {(r["value"]["sym"], r["value"]["s"]) for r in records}
    missing = sorted(set(want) - keys)
    assert not missing, (
        f"{len(missing)} bars missing after the restart, first {missing[:5]}; {stats}; {err[-3000:]}"
    )
    return {"bars": len(want), "records": len(records), "repaired": stats["repaired"]}


def test_sigkill_and_restart_lose_no_minute(
    kafka: KafkaSettings, market: MarketServer, tmp_path: Path
) -> None:
    print("kill test (down 5 s):", _kill_run(kafka, market, tmp_path, down_s=5))


@pytest.mark.slow
def test_sigkill_for_a_minute_and_restart_lose_no_minute(
    kafka: KafkaSettings, market: MarketServer, tmp_path: Path
) -> None:
    print("kill test (down 60 s):", _kill_run(kafka, market, tmp_path, down_s=60))


def test_counters_are_printed_on_a_final_status_too(
    kafka: KafkaSettings, market: MarketServer, tmp_path: Path
) -> None:
    market.control("faults", {"auth_fail": True})
    out = run_cli(
        "produce", "stocks", "--json", "--tickers", "AAPL", env=cli_env(kafka, market, tmp_path), timeout=60
    )
    assert out.returncode == 5 and "auth_failed" in out.stderr
    stats = json.loads(out.stdout.strip().splitlines()[-1])
    assert {k: stats[k] for k in ("connects", "reconnects", "repaired", "repair_failed")} == dict.fromkeys(
        ("connects", "reconnects", "repaired", "repair_failed"), 0
    )
    assert stats["longest_disconnected_s"] == 0


def test_a_bulk_sink_reports_failed_deliveries_and_counts_the_rest(kafka: KafkaSettings) -> None:
    """The repair sink asks the broker for failure reports only: a record the broker refuses (larger than
    the topic's max.message.bytes) still fails the flush, naming why; the others count as delivered."""
    import os

    from confluent_kafka.admin import NewTopic

    from rtfin_cli.errors import ServiceUnavailable
    from rtfin_cli.kafka import clients
    from rtfin_cli.producers.sink import KafkaSink, Stats

    topic = f"{kafka.topics.stocks_aggs}.small"
    admin = clients.admin(kafka)
    admin.create_topics([NewTopic(topic, 1, 1, config={"max.message.bytes": "2048"})])[topic].result()
    wait_until(lambda: topic in admin.list_topics(timeout=10).topics, 30, "the new topic's metadata")
    now = int(time.time() * 1000)
    stats = Stats(source="polygon.aggs")
    sink = KafkaSink(kafka, stats, [topic], bulk=True)
    sink.send_many(topic, "AAPL", [(now - i, b"{}") for i in range(50)], [("rtfin-origin", b"rest")])
    sink.flush()
    assert stats.delivered == 50 and stats.failed == 0
    sink.send_many(topic, "AAPL", [(now, os.urandom(8192))])  # incompressible, over the topic's limit
    with pytest.raises(ServiceUnavailable, match="could not be delivered"):
        sink.flush()
    assert stats.failed == 1 and stats.delivered == 50


def test_a_repair_into_a_missing_topic_fails_with_its_name_and_produces_nothing(
    kafka: KafkaSettings, market: MarketServer
) -> None:
    """`rtfin gaps --repair` connects to Kafka while its first pages load, but checks the topics before it
    produces: a missing topic is the one-line error naming it, not records sent to a topic that is not there."""
    from rtfin_cli.errors import RtfinError
    from rtfin_cli.kafka import clients
    from rtfin_cli.producers.repair import repair_windows
    from rtfin_cli.settings import PolygonSettings, RtfinSettings

    topics = kafka.topics.model_copy(update={"stocks_aggs": f"{kafka.topics.stocks_aggs}.absent"})
    settings = RtfinSettings(
        kafka=kafka.model_copy(update={"topics": topics}), polygon=PolygonSettings(rest_url=market.url)
    )
    lo = _dataset_now(market) + market.control("status")["shift_ms"] - 30 * ds.MINUTE_MS
    with pytest.raises(RtfinError, match=r"topic\(s\) missing: .*\.absent"):
        repair_windows(settings, [(t, lo, lo + 20 * ds.MINUTE_MS) for t in TICKERS])
    assert topics.stocks_aggs not in clients.admin(kafka).list_topics(timeout=10).topics
