from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from tests.conftest import run_cli


def test_topics_create_list_describe(rtfin_env: dict[str, str], tmp_path: Path) -> None:
    first = run_cli("topics", "create", "--json", env=rtfin_env, cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    created = json.loads(first.stdout)
    assert set(created) == {"rtfin.news.raw", "rtfin.stocks.aggs", "rtfin.news.sentiment", "rtfin.dlq"}
    again = json.loads(run_cli("topics", "create", "--json", env=rtfin_env, cwd=tmp_path).stdout)
    assert set(again.values()) == {"exists"}
    listed = json.loads(run_cli("topics", "list", "--json", env=rtfin_env, cwd=tmp_path).stdout)
    by_name = {t["name"]: t for t in listed}
    assert set(created) <= set(by_name)
    assert by_name["rtfin.news.raw"]["partitions"] == 3
    described = json.loads(
        run_cli("topics", "describe", "rtfin.dlq", "--json", env=rtfin_env, cwd=tmp_path).stdout
    )
    assert described[0]["config"]["retention.ms"] == "604800000"


def test_produce_consume_round_trip(kafka_settings) -> None:  # type: ignore[no-untyped-def]
    from confluent_kafka import TopicPartition
    from confluent_kafka.admin import NewTopic

    from rtfin_cli.kafka.clients import admin, consumer, producer

    topic = f"roundtrip-{time.time_ns()}"
    client = admin(kafka_settings)
    client.create_topics([NewTopic(topic, 2, 1)])[topic].result(timeout=30)
    p = producer(kafka_settings)
    sent = {f"k{i}": {"n": i} for i in range(500)}
    for key, value in sent.items():
        p.produce(topic, key=key, value=json.dumps(value), timestamp=1_700_000_000_000 + int(key[1:]))
    assert p.flush(30) == 0
    c = consumer(kafka_settings, group=f"g-{topic}")
    c.subscribe([topic])
    got: dict[str, dict[str, int]] = {}
    deadline = time.monotonic() + 60
    while len(got) < len(sent) and time.monotonic() < deadline:
        msg = c.poll(1.0)
        if msg is None or msg.error():
            continue
        got[msg.key().decode()] = json.loads(msg.value())
        assert msg.timestamp()[1] == 1_700_000_000_000 + int(msg.key().decode()[1:])
    c.commit(asynchronous=False)
    committed = c.committed([TopicPartition(topic, 0), TopicPartition(topic, 1)], timeout=10)
    c.close()
    assert got == sent
    assert sum(tp.offset for tp in committed) == len(sent)


def test_local_kafka_cli_lifecycle(tmp_path: Path, rtfin_env: dict[str, str]) -> None:
    """start → start again (already running) → status → stop → stop again, on its own ports."""
    from rtfin_cli.local.supervisor import free_port

    env = {**rtfin_env, "RTFIN__LOCAL__KAFKA_PORT": str(free_port()),
           "RTFIN__LOCAL__KAFKA_CONTROLLER_PORT": str(free_port())}  # fmt: skip
    start = run_cli("local", "kafka", "start", env=env, cwd=tmp_path, timeout=180)
    try:
        assert start.returncode == 0, start.stderr
        assert "Kafka ready" in start.stdout
        again = run_cli("local", "kafka", "start", env=env, cwd=tmp_path)
        assert again.returncode != 0 and "already running" in again.stderr
        status = json.loads(run_cli("local", "kafka", "status", "--json", env=env, cwd=tmp_path).stdout)
        assert status["running"] is True and status["pid"] > 0
    finally:
        stop = run_cli("local", "kafka", "stop", env=env, cwd=tmp_path, timeout=120)
    assert stop.returncode == 0 and "stopped" in stop.stdout
    status = run_cli("local", "kafka", "status", "--json", env=env, cwd=tmp_path)
    assert status.returncode == 1 and json.loads(status.stdout)["running"] is False


def test_busy_port_is_a_clear_error(tmp_path: Path, rtfin_env: dict[str, str], kafka_broker) -> None:  # type: ignore[no-untyped-def]
    env = {**rtfin_env, "RTFIN__LOCAL__KAFKA_PORT": str(kafka_broker.port)}
    out = run_cli("local", "kafka", "start", env=env, cwd=tmp_path)
    assert out.returncode == 7
    assert f"port {kafka_broker.port}" in out.stderr and "already in use" in out.stderr


@pytest.mark.parametrize("args", [["topics", "list"], ["doctor"]])
def test_unreachable_kafka_is_one_line(tmp_path: Path, args: list[str]) -> None:
    import os

    from rtfin_cli.local.supervisor import free_port

    env = {
        **os.environ,
        "RTFIN__KAFKA__BOOTSTRAP": f"127.0.0.1:{free_port()}",
        "RTFIN__KAFKA__TIMEOUT_S": "2",
    }
    out = run_cli(*args, env=env, cwd=tmp_path)
    assert out.returncode != 0
    assert "Traceback" not in out.stderr
