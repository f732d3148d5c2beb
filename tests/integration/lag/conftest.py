"""Helpers for `rtfin lag` tests on the real broker: topics, a producer that records what it wrote,
a consumer-group member that can be paused, and a live `rtfin lag --json` process read line by line."""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[3]


def new_topic(kafka: Any, partitions: int = 3, prefix: str = "lagtest") -> str:
    from confluent_kafka.admin import NewTopic

    from rtfin_cli.kafka.clients import admin

    name = f"{prefix}.{uuid.uuid4().hex[:10]}"
    client = admin(kafka)  # keep a reference: futures die with their client
    client.create_topics([NewTopic(name, partitions, 1)])[name].result(timeout=60)
    return name


def produce(
    kafka: Any, topic: str, count: int, ts_ms: Any = None, start: int = 0
) -> list[tuple[int, int, int]]:  # noqa: E501
    """Produce ``count`` keyed messages; returns (partition, offset, timestamp ms) of each, in order."""
    from rtfin_cli.kafka.clients import producer

    p = producer(kafka, **{"linger.ms": 0})
    out: list[tuple[int, int, int]] = []

    def done(err: Any, msg: Any) -> None:
        assert err is None, err
        out.append((msg.partition(), msg.offset(), msg.timestamp()[1]))

    for i in range(start, start + count):
        ts = ts_ms(i) if ts_ms else int(time.time() * 1000)
        p.produce(topic, key=f"k{i}", value=json.dumps({"i": i}), timestamp=ts, on_delivery=done)
    assert p.flush(30) == 0
    return out


def commit(kafka: Any, group: str, topic: str, offsets: dict[int, int]) -> None:
    from confluent_kafka import ConsumerGroupTopicPartitions, TopicPartition

    from rtfin_cli.kafka.clients import admin

    client = admin(kafka)
    req = [ConsumerGroupTopicPartitions(group, [TopicPartition(topic, p, o) for p, o in offsets.items()])]

    def done() -> bool:  # a broker still loading its offsets topic answers with per-partition errors
        res = client.alter_consumer_group_offsets(req)[group].result(30)
        return all(tp.error is None for tp in res.topic_partitions)

    from rtfin_cli.local.supervisor import wait_for

    assert wait_for(done, 60, 0.5), f"cannot commit offsets for {group}"


class Member(threading.Thread):
    """A consumer-group member that consumes and commits every message until paused; paused, it keeps
    polling (so it stays in the group) but makes no progress — a stuck consumer."""

    def __init__(self, kafka: Any, group: str, topic: str, limit: int | None = None) -> None:
        super().__init__(daemon=True)
        self.kafka, self.group, self.topic, self.limit = kafka, group, topic, limit
        self.consumed = 0
        self.paused = threading.Event()
        self.stopping = threading.Event()
        self.assigned = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        from rtfin_cli.kafka.clients import consumer

        c = consumer(self.kafka, group=self.group, **{"session.timeout.ms": 10000})
        c.subscribe([self.topic], on_assign=lambda *_: self.assigned.set())
        is_paused = False
        try:
            while not self.stopping.is_set():
                if (self.paused.is_set() or self.limit == self.consumed) and not is_paused and c.assignment():
                    c.pause(c.assignment())
                    is_paused = True
                msg = c.poll(0.1)
                if msg is None or msg.error() is not None or is_paused:
                    continue
                self.consumed += 1
                c.commit(msg, asynchronous=False)
        except BaseException as exc:  # noqa: BLE001 - surfaced by the test
            self.error = exc
        finally:
            c.close()

    def stop(self) -> None:
        self.stopping.set()
        self.join(20)


@pytest.fixture()
def members() -> Iterator[list[Member]]:
    started: list[Member] = []
    yield started
    for m in started:
        m.stop()


class LiveLag:
    """`rtfin lag --json ...` running as a user would; ``docs()`` yields each JSON line as it arrives."""

    def __init__(self, args: list[str], env: dict[str, str], cwd: Path) -> None:
        self.err_file = cwd / f"lag-{uuid.uuid4().hex[:6]}.stderr"
        with open(self.err_file, "w") as err:  # a file, so a crash dump survives the process
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "rtfin_cli", "lag", "--json", *args],
                stdout=subprocess.PIPE, stderr=err, text=True, env=env, cwd=cwd,
            )  # fmt: skip
        self.lines: queue.Queue[str] = queue.Queue()
        self.last: dict[str, Any] | None = None
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line)

    def wait_for(self, pred: Any, timeout: float) -> dict[str, Any]:
        """The first snapshot for which ``pred(doc)`` holds; fails after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                doc = json.loads(self.lines.get(timeout=0.5))
            except queue.Empty:
                assert self.proc.poll() is None, f"rtfin lag exited {self.proc.returncode}: {self.stderr()}"
                continue
            self.last = doc
            if pred(doc):
                return doc
        last = json.dumps(self.last)[:600] if self.last else "none"
        raise AssertionError(f"no matching snapshot within {timeout}s; last: {last}")

    def stderr(self) -> str:
        return self.err_file.read_text()[-3000:]

    def stop(self) -> int:
        self.proc.terminate()
        try:
            return self.proc.wait(15)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()


@pytest.fixture()
def live_lag(rtfin_env: dict[str, str], tmp_path: Path) -> Iterator[Any]:
    procs: list[LiveLag] = []

    def start(*args: str, env: dict[str, str] | None = None) -> LiveLag:
        live = LiveLag(list(args), env or rtfin_env, tmp_path)
        procs.append(live)
        return live

    yield start
    for p in procs:
        if p.proc.poll() is None:
            p.stop()


def lag_env(base: dict[str, str]) -> dict[str, str]:
    """The CLI env with ClickHouse and the market replay pointed at closed ports, so tests without them stay
    fast and a developer's running stack never lends its replay clock."""
    from rtfin_cli.local.supervisor import free_port

    return {**base, "RTFIN__CLICKHOUSE__PORT": str(free_port()), "PYTHONPATH": str(ROOT), "PYTHONFAULTHANDLER": "1",
            "RTFIN__POLYGON__REST_URL": f"http://127.0.0.1:{free_port()}", **_no_color()}  # fmt: skip


def _no_color() -> dict[str, str]:
    return {"NO_COLOR": "1", "TERM": os.environ.get("TERM", "xterm")}
