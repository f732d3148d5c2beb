"""Producer test helpers: a fresh replay server per test, unique topics on the session broker, readers."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import pytest

from rtfin_cli.local.market.service import MarketServer
from rtfin_cli.local.supervisor import free_port
from rtfin_cli.settings import KafkaSettings, PolygonSettings, RtfinSettings, TopicSettings
from tests.conftest import CACHE


@pytest.fixture()
def market(tmp_path: Path) -> Iterator[MarketServer]:
    """A replay server of our own (clean emitted report and faults), paused at the default start."""
    server = MarketServer(data_dir=tmp_path / "market", port=free_port(), speed=0.0, rate_limit=0)
    server.start(timeout=60)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture()
def kafka(kafka_settings: KafkaSettings) -> KafkaSettings:
    """Session broker settings with this test's own freshly created topics."""
    from rtfin_cli.kafka.admin import create_topics

    prefix = f"t{uuid.uuid4().hex[:8]}"
    topics = TopicSettings(
        news_raw=f"{prefix}.news.raw",
        stocks_aggs=f"{prefix}.stocks.aggs",
        news_sentiment=f"{prefix}.news.sentiment",
        dlq=f"{prefix}.dlq",
        partitions=3,
        retention_ms=-1,  # the replay's articles go back weeks: a 7-day retention deletes them at its next check
    )
    kafka = kafka_settings.model_copy(update={"topics": topics, "linger_ms": 5})
    create_topics(kafka)
    return kafka


def settings_for(kafka: KafkaSettings, market: MarketServer, **polygon: Any) -> RtfinSettings:
    pol = PolygonSettings(rest_url=market.url, ws_url=market.ws_url, **polygon)
    return RtfinSettings(kafka=kafka, polygon=pol)


def cli_env(kafka: KafkaSettings, market: MarketServer, tmp_path: Path, **polygon: Any) -> dict[str, str]:
    """Environment for a real `rtfin produce ...` process against these topics and this server."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RTFIN")}
    t = kafka.topics
    env.update(
        RTFIN__KAFKA__BOOTSTRAP=kafka.bootstrap,
        RTFIN__KAFKA__TOPICS__NEWS_RAW=t.news_raw,
        RTFIN__KAFKA__TOPICS__STOCKS_AGGS=t.stocks_aggs,
        RTFIN__KAFKA__TOPICS__NEWS_SENTIMENT=t.news_sentiment,
        RTFIN__KAFKA__TOPICS__DLQ=t.dlq,
        RTFIN__POLYGON__REST_URL=market.url,
        RTFIN__POLYGON__WS_URL=market.ws_url,
        RTFIN__LOCAL__DATA_DIR=str(tmp_path / ".rtfin"),
        RTFIN__LOCAL__CACHE_DIR=str(CACHE),
    )
    env.update({f"RTFIN__POLYGON__{k.upper()}": str(v) for k, v in polygon.items()})
    return env


def read_topic(kafka: KafkaSettings, topic: str, timeout: float = 30.0) -> list[dict[str, Any]]:
    """Every record of a topic: key, value (JSON when it parses), timestamp, headers, partition."""
    from confluent_kafka import TopicPartition

    from rtfin_cli.kafka import clients

    c = clients.consumer(kafka, group=f"test-{uuid.uuid4().hex[:6]}")
    try:
        parts = sorted(c.list_topics(topic, timeout=10).topics[topic].partitions)
        ends = {p: c.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in parts}
        todo = {p for p in parts if ends[p] > 0}
        c.assign([TopicPartition(topic, p, 0) for p in todo])
        out: list[dict[str, Any]] = []
        deadline = time.monotonic() + timeout
        while todo and time.monotonic() < deadline:
            for msg in c.consume(500, timeout=0.5):
                if msg.error():
                    continue
                raw = msg.value()
                try:
                    value = json.loads(raw)
                except ValueError:
                    value = raw
                out.append(
                    {
                        "key": msg.key().decode() if msg.key() else None,
                        "value": value,
                        "ts": msg.timestamp()[1],
                        "partition": msg.partition(),
                        "headers": {k: v.decode() for k, v in (msg.headers() or [])},
                    }
                )
                if msg.offset() >= ends[msg.partition()] - 1:
                    todo.discard(msg.partition())
        return out
    finally:
        c.close()


def topic_count(kafka: KafkaSettings, topic: str) -> int:
    from rtfin_cli.kafka.admin import end_offsets

    lows, highs = end_offsets(kafka, topic, kafka.topics.partitions)
    return sum(h - lo for lo, h in zip(lows, highs, strict=True))


def wait_until(check: Any, timeout: float, what: str, interval: float = 0.2) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


_OUTPUT: dict[int, tuple[IO[str], IO[str]]] = {}  # pid -> the files holding its stdout and stderr


def start_stocks(env: dict[str, str], *args: str) -> subprocess.Popen[str]:
    """`rtfin produce stocks --json ARGS` as a child process. Its output goes to files, never to pipes: a
    pipe nobody reads fills after 64 KiB of log lines and then blocks the producer in mid-stream."""
    cmd = [sys.executable, "-m", "rtfin_cli", "produce", "stocks", "--json", *args]
    out, err = tempfile.TemporaryFile("w+"), tempfile.TemporaryFile("w+")  # noqa: SIM115 - closed by stop()
    proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=err, text=True)
    _OUTPUT[proc.pid] = (out, err)
    return proc


def output(proc: subprocess.Popen[str]) -> tuple[str, str]:
    """What a ``start_stocks`` child has written so far to stdout and stderr."""
    texts = []
    for f in _OUTPUT[proc.pid]:
        f.seek(0)
        texts.append(f.read())
    return texts[0], texts[1]


def stop(proc: subprocess.Popen[str], timeout: float) -> tuple[int, str, str]:
    """SIGTERM (as the stack's supervisor stops it), then its exit code and output; killed after timeout."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    out, err = output(proc)
    for f in _OUTPUT.pop(proc.pid):
        f.close()
    return proc.returncode, out, err
