"""jobs/sentiment_kafka.py: a batch whose Kafka transaction hangs (librdkafka's send_offsets_to_transaction
ignoring its timeout after the group coordinator went away, seen in the broker-SIGKILL fault test) makes
the job exit instead of hanging alive; a normal batch cancels the deadline."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from rtfin_cli.sentiment.runner import load_job

job = load_job()
kafka = job.kafka_module(job.Options())  # the job's Kafka side (jobs/sentiment_kafka.py)


class _Producer:
    def __init__(self, block: threading.Event | None = None) -> None:
        self.block, self.calls = block, []  # type: ignore[var-annotated]

    def begin_transaction(self) -> None:
        self.calls.append("begin")

    def send_offsets_to_transaction(self, *_a: Any) -> None:
        self.calls.append("send_offsets")
        if self.block is not None:
            assert self.block.wait(10), "the deadline did not fire"

    def commit_transaction(self, *_a: Any) -> None:
        self.calls.append("commit")

    def abort_transaction(self, *_a: Any) -> None:
        self.calls.append("abort")


class _Consumer:
    def consumer_group_metadata(self) -> object:
        return object()


def _sink(producer: _Producer) -> Any:
    sink = object.__new__(kafka.TransactionalSink)  # no Kafka: the transaction calls are recorded
    sink.opts, sink.producer, sink.consumer, sink.last_committed = job.Options(), producer, _Consumer(), {}
    return sink


def test_a_stuck_transaction_ends_the_job(monkeypatch: pytest.MonkeyPatch) -> None:
    unblock, fired = threading.Event(), []
    monkeypatch.setenv(kafka.TXN_DEADLINE_ENV, "0.3")
    monkeypatch.setattr(kafka, "_transaction_stuck", lambda d: (fired.append(d), unblock.set()))
    sink = _sink(_Producer(block=unblock))
    sink.write([], [], {0: 5})
    assert fired == [0.3]


def test_a_normal_batch_cancels_the_deadline(monkeypatch: pytest.MonkeyPatch) -> None:
    fired: list[float] = []
    monkeypatch.setenv(kafka.TXN_DEADLINE_ENV, "0.2")
    monkeypatch.setattr(kafka, "_transaction_stuck", fired.append)
    producer = _Producer()
    sink = _sink(producer)
    sink.write([], [], {0: 5})
    threading.Event().wait(0.5)
    assert fired == [] and producer.calls == ["begin", "send_offsets", "commit"]
    assert sink.last_committed == {0: 5}


def test_the_default_deadline_outlasts_the_transaction_timeouts() -> None:
    assert kafka.TXN_DEADLINE_S > 60 + 120 + 60
