"""`rtfin sentiment run` end to end: real Kafka (session broker), Spark local mode, the offline model.

One scenario (Spark start-up dominates the cost): articles and bad records in rtfin.news.raw; a first
run is SIGKILLed mid-stream; a second run finishes the topic and stops on SIGTERM (exit 0). Every
article is in rtfin.news.sentiment exactly once, bad records are in the DLQ with headers, and the
consumer group `rtfin-sentiment` (here a unique name) has committed the end offsets.

Articles are published in the hours before the run: the job stamps each result with the article's time, and
the broker's time-based retention (7 days, checked every minute) deletes records stamped older than that
within a minute of their write, which is not what this test is about.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import CACHE

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]
N_GOOD = 120
HOUR = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
HEADLINES = [
    "{co} beats quarterly estimates and raises guidance",
    "{co} shares plunge after profit warning",
    "{co} to report earnings on Thursday",
    "{co} announces layoffs as sales slump",
    "{co} stock soars on record revenue",
]


def _article(i: int) -> dict[str, Any]:
    return {
        "id": f"a-{i:04d}",
        "published_utc": (HOUR - timedelta(hours=i % 5, minutes=i % 10)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "title": HEADLINES[i % len(HEADLINES)].format(co=f"Company{i}"),
        "description": "Shares moved in trading." if i % 2 else None,
        "article_url": f"https://example.com/{i}",
        "publisher": {"name": "Example"},
        "tickers": [f"T{i % 7}"],
    }


def _consume_all(kafka: Any, topic: str, expected: int, timeout: float = 60) -> list[Any]:
    from rtfin_cli.kafka.clients import consumer

    c = consumer(kafka, group=f"check-{uuid.uuid4().hex}", **{"isolation.level": "read_committed"})
    c.subscribe([topic])
    got, deadline, quiet_since = [], time.monotonic() + timeout, time.monotonic()
    while time.monotonic() < deadline:
        msg = c.poll(0.5)
        if msg is None:
            if len(got) >= expected and time.monotonic() - quiet_since > 3:
                break
            continue
        if msg.error():
            continue
        got.append(msg)
        quiet_since = time.monotonic()
    c.close()
    return got


def _lag(kafka: Any, topic: str, group: str) -> int:
    from confluent_kafka import KafkaException, TopicPartition

    from rtfin_cli.kafka.clients import consumer

    c = consumer(kafka, group=group)
    try:
        parts = [TopicPartition(topic, p) for p in range(3)]
        try:
            committed = {tp.partition: tp.offset for tp in c.committed(parts, timeout=10)}
        except KafkaException:  # coordinator still loading: ask again on the next poll
            return 10**9
        total = 0
        for p in range(3):
            _, high = c.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
            total += high - max(committed[p], 0)
        return total
    finally:
        c.close()


def _start(env: dict[str, str], cwd: Path, log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "rtfin_cli", "sentiment", "run"],
        env=env, cwd=cwd, stdout=log.open("ab"), stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip


def _wait(pred: Any, proc: subprocess.Popen[bytes], log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return
        if proc.poll() is not None:
            pytest.fail(f"job exited early ({proc.returncode}):\n{log.read_text()[-3000:]}")
        time.sleep(1)
    os.killpg(proc.pid, signal.SIGKILL)
    pytest.fail(f"timed out:\n{log.read_text()[-3000:]}")


def test_run_scores_every_article_once_across_a_crash(
    kafka_broker: Any, kafka_settings: Any, tmp_path: Path
) -> None:
    from rtfin_cli.kafka.admin import create_topics
    from rtfin_cli.kafka.clients import producer
    from rtfin_cli.settings import KafkaSettings, TopicSettings

    prefix = f"t{uuid.uuid4().hex[:8]}"
    topics = TopicSettings(
        news_raw=f"{prefix}.news.raw", news_sentiment=f"{prefix}.news.sentiment",
        dlq=f"{prefix}.dlq", stocks_aggs=f"{prefix}.stocks.aggs",
    )  # fmt: skip
    kafka = KafkaSettings(bootstrap=kafka_settings.bootstrap, topics=topics)
    create_topics(kafka)
    group = f"{prefix}-sentiment"
    p = producer(kafka)
    for i in range(N_GOOD):
        a = _article(i)
        p.produce(topics.news_raw, key=a["id"], value=json.dumps(a))
    p.produce(topics.news_raw, key="bad-json", value=b"{not json")
    p.produce(topics.news_raw, key="no-title", value=json.dumps({"id": "no-title", "description": "x"}))
    p.produce(topics.news_raw, key="empty-title", value=json.dumps({"id": "empty-title", "title": ""}))
    long_desc = "Revenue rose sharply. " * 4700  # ~100 kB
    p.produce(
        topics.news_raw,
        key="long",
        value=json.dumps({"id": "long", "title": "Long", "description": long_desc}),
    )
    assert p.flush(30) == 0

    env = {k: v for k, v in os.environ.items() if not k.startswith("RTFIN")}
    env.update(
        RTFIN__KAFKA__BOOTSTRAP=kafka.bootstrap,
        RTFIN__KAFKA__TOPICS__NEWS_RAW=topics.news_raw,
        RTFIN__KAFKA__TOPICS__NEWS_SENTIMENT=topics.news_sentiment,
        RTFIN__KAFKA__TOPICS__DLQ=topics.dlq,
        RTFIN__SENTIMENT__GROUP=group,
        RTFIN__SENTIMENT__MAX_OFFSETS_PER_TRIGGER="30",
        RTFIN__SENTIMENT__TRIGGER_INTERVAL="1 second",
        RTFIN__SENTIMENT__CHECKPOINT_DIR=str(tmp_path / "checkpoint"),
        RTFIN__LOCAL__CACHE_DIR=str(CACHE),
        RTFIN__LOCAL__DATA_DIR=str(tmp_path / ".rtfin"),
        HF_HUB_OFFLINE="1",
        RTFIN_TORCH_THREADS="1",
    )
    log = tmp_path / "job.log"
    total = N_GOOD + 4

    started: list[subprocess.Popen[bytes]] = []
    try:
        started.append(first := _start(env, tmp_path, log))
        _wait(lambda: _lag(kafka, topics.news_raw, group) < total - 25, first, log, timeout=600)
        os.killpg(first.pid, signal.SIGKILL)  # crash: no clean shutdown, maybe mid-batch
        first.wait(30)
        assert _lag(kafka, topics.news_raw, group) > 0, "first run finished everything before the crash"

        started.append(second := _start(env, tmp_path, log))
        _wait(lambda: _lag(kafka, topics.news_raw, group) == 0, second, log, timeout=600)
        os.killpg(second.pid, signal.SIGTERM)  # as the local stack's supervisor stops it
        assert second.wait(120) == 0, log.read_text()[-3000:]
        assert "stopped: batches" in log.read_text()
    finally:
        for proc in started:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)

    out = _consume_all(kafka, topics.news_sentiment, N_GOOD + 2)
    ids = [m.key().decode() for m in out]
    assert len(ids) == len(set(ids)), f"duplicates: {sorted({i for i in ids if ids.count(i) > 1})}"
    assert set(ids) == {f"a-{i:04d}" for i in range(N_GOOD)} | {"empty-title", "long"}
    for m in out:
        doc = json.loads(m.value())
        assert doc["id"] == m.key().decode()
        assert doc["label"] in ("positive", "negative", "neutral")
        assert 0.0 <= doc["score"] <= 1.0 and -1.0 <= doc["sentiment"] <= 1.0
        assert doc["model"] == "rtfin-minilm-fin" and doc["scored_at"].endswith("Z")
        if doc["id"].startswith("a-"):
            i = int(doc["id"][2:])
            assert doc["tickers"] == [f"T{i % 7}"] and doc["title"] == _article(i)["title"]
            event_ms = int(
                datetime.fromisoformat(doc["published_utc"].replace("Z", "+00:00")).timestamp() * 1000
            )
            assert m.timestamp()[1] == event_ms  # Kafka timestamp = event time
    by_id = {json.loads(m.value())["id"]: json.loads(m.value()) for m in out}
    assert by_id["a-0001"]["label"] == "negative" and by_id["a-0004"]["label"] == "positive"

    dlq = _consume_all(kafka, topics.dlq, 2)
    assert len(dlq) == 2
    errors = {m.key().decode(): dict((k, v.decode()) for k, v in m.headers()) for m in dlq}
    assert errors["bad-json"]["rtfin-error"] == "not valid JSON"
    assert errors["no-title"]["rtfin-error"] == "missing title"
    for h in errors.values():
        assert h["rtfin-stage"] == "sentiment" and h["rtfin-source"] == topics.news_raw
    assert {m.value() for m in dlq} == {
        b"{not json",
        json.dumps({"id": "no-title", "description": "x"}).encode(),
    }
