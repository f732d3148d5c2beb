"""`rtfin produce news` against the real replay server and the real Kafka broker."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from rtfin_cli.local.market.service import MarketServer
from rtfin_cli.producers.news import NewsOptions, run_news
from rtfin_cli.settings import KafkaSettings
from rtfin_cli.sources.records import parse_utc_ms
from tests.conftest import run_cli
from tests.integration.producers.conftest import cli_env, read_topic, settings_for, topic_count, wait_until

ALL = NewsOptions(since_ms=0, once=True)


def _check_exactly_once(kafka: KafkaSettings, market: MarketServer) -> list[dict[str, object]]:
    records = read_topic(kafka, kafka.topics.news_raw)
    keys = [r["key"] for r in records]
    dupes = [k for k, n in Counter(keys).items() if n > 1]
    assert not dupes, f"{len(dupes)} duplicated article ids, e.g. {dupes[:3]}"
    emitted = market.control("emitted")
    expected = set(emitted["articles"]) - set(emitted["malformed_articles"])
    assert set(keys) == expected, (
        f"missing {len(expected - set(keys))}, unexpected {len(set(keys) - expected)}"
    )
    return records


def test_backfill_every_article_exactly_once_then_resume_sends_nothing(
    kafka: KafkaSettings, market: MarketServer
) -> None:
    market.control("clock", {"goto": "end"})  # the whole dataset is visible
    settings = settings_for(kafka, market, news_limit=400)
    stats = run_news(settings, ALL, threading.Event())
    records = _check_exactly_once(kafka, market)
    assert len(records) == 5200 == stats.delivered
    for r in records[:50]:
        value = r["value"]
        assert isinstance(value, dict)
        assert r["ts"] == parse_utc_ms(value["published_utc"]) and value["id"] == r["key"]
        assert set(value) >= {
            "id",
            "published_utc",
            "title",
            "description",
            "article_url",
            "author",
            "publisher",
            "tickers",
            "keywords",
            "image_url",
            "amp_url",
            "insights",
            "ingested_at",
        }
        assert "label" not in value
    again = run_news(settings, NewsOptions(once=True), threading.Event())  # resumes from the topic tail
    assert again.delivered == 0 and again.duplicates >= 1
    assert topic_count(kafka, kafka.topics.news_raw) == 5200


def test_live_polling_follows_the_clock(kafka: KafkaSettings, market: MarketServer) -> None:
    """Polling while the replay clock runs: every newly visible article once, none before it is visible."""
    settings = settings_for(kafka, market)
    stop = threading.Event()
    opts = NewsOptions(since_ms=0, interval_s=0.3)
    worker = threading.Thread(target=run_news, args=(settings, opts, stop), daemon=True)
    worker.start()
    try:
        start = market.control("status")["articles_visible"]
        wait_until(lambda: topic_count(kafka, kafka.topics.news_raw) >= start, 30, "the backlog")
        market.control("clock", {"speed": 20000, "end_in_s": 6 * 3600})  # six market hours in ~1 s
        wait_until(lambda: market.control("status")["finished"], 30, "the replay window to pass")
        final = market.control("status")["articles_visible"]
        assert final > start
        wait_until(lambda: topic_count(kafka, kafka.topics.news_raw) >= final, 30, "the new articles")
    finally:
        stop.set()
        worker.join(30)
    records = _check_exactly_once(kafka, market)
    assert len(records) == final


@pytest.mark.slow
def test_sigkill_mid_backfill_then_restart_no_gap_no_duplicate(
    kafka: KafkaSettings, market: MarketServer, tmp_path: Path
) -> None:
    market.control("clock", {"goto": "end"})
    market.control("faults", {"latency_s": 0.05})  # ~130 pages of 40 at >= 50 ms each: a backfill of seconds
    env = cli_env(kafka, market, tmp_path, news_limit=40)
    cmd = [sys.executable, "-m", "rtfin_cli", "produce", "news", "--since", "2000-01-01", "--once"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_until(
            lambda: topic_count(kafka, kafka.topics.news_raw) >= 1500 or proc.poll() is not None,
            60,
            "1500 articles in the topic",
        )
        assert proc.poll() is None, f"backfill finished before the kill: {proc.communicate()}"
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
    killed_at = topic_count(kafka, kafka.topics.news_raw)
    assert 0 < killed_at < 5200
    market.control("faults", {"latency_s": 0})
    out = run_cli(
        "produce", "news", "--once", "--json", env=env, timeout=120
    )  # no --since: resume from the topic
    assert out.returncode == 0, out.stderr
    stats = json.loads(out.stdout.strip().splitlines()[-1])
    assert stats["delivered"] == 5200 - killed_at
    assert len(_check_exactly_once(kafka, market)) == 5200


@pytest.mark.slow
def test_429_and_5xx_bursts_are_survived(kafka: KafkaSettings, market: MarketServer) -> None:
    market.control("clock", {"goto": "end"})
    market.control("faults", {"burst_429": 4, "http_5xx": 3, "retry_after": 0.1})
    stats = run_news(settings_for(kafka, market, news_limit=1000), ALL, threading.Event())
    assert stats.retries >= 7
    assert len(_check_exactly_once(kafka, market)) == 5200
    assert market.control("status")["counters"]["rate_limited"] >= 4


def test_malformed_articles_go_to_the_dlq(kafka: KafkaSettings, market: MarketServer) -> None:
    market.control("clock", {"goto": "end"})
    market.control("faults", {"malformed_articles": 3})
    stats = run_news(settings_for(kafka, market), ALL, threading.Event())
    assert stats.dead_lettered == 3
    _check_exactly_once(kafka, market)
    dlq = read_topic(kafka, kafka.topics.dlq)
    bad = set(market.control("emitted")["malformed_articles"])
    assert {r["key"] for r in dlq} == bad and len(dlq) == 3
    for r in dlq:
        assert r["headers"]["rtfin-source"] == "polygon.news" and r["headers"]["rtfin-stage"] == "produce"
        assert "published_utc" in r["headers"]["rtfin-error"]
        assert (
            isinstance(r["value"], dict) and r["value"]["published_utc"] == "yesterday-ish"
        )  # the raw payload


def test_401_names_the_api_key_and_does_not_retry(
    kafka: KafkaSettings, market: MarketServer, tmp_path: Path
) -> None:
    market.control("faults", {"auth_fail": True})
    t0 = time.monotonic()
    out = run_cli("produce", "news", "--once", env=cli_env(kafka, market, tmp_path), timeout=60)
    assert out.returncode == 5, out.stderr
    first = [ln for ln in out.stderr.splitlines() if ln.startswith("error:")]
    assert first and "401" in first[0] and "API key" in first[0]
    assert "POLYGON api key" in out.stderr and "Traceback" not in out.stderr
    assert market.control("status")["counters"]["requests"] == 1
    assert time.monotonic() - t0 < 30


def test_sigterm_flushes_and_exits_zero_with_log_lines(
    kafka: KafkaSettings, market: MarketServer, tmp_path: Path
) -> None:
    visible = market.control("status")["articles_visible"]
    cmd = [
        sys.executable,
        "-m",
        "rtfin_cli",
        "produce",
        "news",
        "--since",
        "2000-01-01",
        "--interval",
        "0.5s",
        "--json",
    ]
    env = cli_env(kafka, market, tmp_path)
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        done = lambda: topic_count(kafka, kafka.topics.news_raw) >= visible or proc.poll() is not None  # noqa: E731
        wait_until(done, 60, "the backlog")
        time.sleep(1.0)  # at least one more (empty) poll
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    stats = json.loads(out.strip().splitlines()[-1])
    assert stats["delivered"] == visible == topic_count(kafka, kafka.topics.news_raw)
    assert (
        "level=INFO logger=rtfin.producers" in err and "SIGTERM" in err
    )  # line-oriented logs when not a TTY


def test_a_backfill_older_than_the_topics_keep_is_refused(
    kafka_settings: KafkaSettings, market: MarketServer, tmp_path: Path
) -> None:
    """Articles carry their publish time as Kafka timestamp: ones older than retention.ms would be deleted
    at the broker's next check, so a start before that is refused, naming the topic and how to fix it."""
    import uuid

    from rtfin_cli.kafka.admin import create_topics
    from rtfin_cli.settings import TopicSettings

    p = f"r{uuid.uuid4().hex[:8]}"
    topics = TopicSettings(
        news_raw=f"{p}.news.raw", stocks_aggs=f"{p}.aggs", news_sentiment=f"{p}.sent", dlq=f"{p}.dlq",
        retention_ms=2 * 86_400_000,
    )  # fmt: skip
    kafka = kafka_settings.model_copy(update={"topics": topics})
    create_topics(kafka)
    env = cli_env(kafka, market, tmp_path)
    for option in (("--since", "3d"), ("--since", "2000-01-01"), ("--until", "3d")):
        out = run_cli("produce", "news", "--once", *option, env=env, timeout=60)
        assert out.returncode == 2, out.stderr
        first = out.stderr.splitlines()[0]
        assert first.startswith(f"error: {option[0]} 20") and f"is older than {p}.news.raw keeps" in first, (
            out.stderr
        )
        assert "raise retention.ms" in out.stderr
    assert topic_count(kafka, topics.news_raw) == 0
    ok = run_cli("produce", "news", "--once", "--since", "1d", "--json", env=env, timeout=120)
    assert ok.returncode == 0, ok.stderr
