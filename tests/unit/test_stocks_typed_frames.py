"""The stocks producer's typed frame path (one msgspec pass per frame) sends exactly what the per-event path
sends, and a frame it refuses falls back to that path; a subscribe's repair covers every served ticker at
once, stops where the new stream begins and keeps the stream from repeating what it produced."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rtfin_cli.producers.repair import Repairer, Resume
from rtfin_cli.producers.sink import Stats, Ticker
from rtfin_cli.producers.stocks import AggHandler
from rtfin_cli.sources.records import Events, decode_frame, loads
from tests.unit.test_sources_records import BAR, RecordingSink
from tests.unit.test_stocks_reconnect import FakeAggs

M = 60_000
NUMS = ("o", "h", "l", "c", "v", "vw", "av", "op", "a", "z")


def _run(text: str, typed: bool) -> tuple[RecordingSink, Stats]:
    sink, stats = RecordingSink(), Stats(source="polygon.stocks")
    handler = AggHandler(sink, "aggs", stats, Ticker(None, stats))  # type: ignore[arg-type]
    data = decode_frame(text) if typed else None
    if data is None:
        try:
            data = loads(text)
        except ValueError:
            data = None
    handler(data, text)
    return sink, stats


def _sent(sink: RecordingSink) -> list[tuple[str, str, dict[str, Any], int]]:
    out = []
    for topic, key, value, ts in sink.sent:
        rec = json.loads(value)
        rec.pop("ingested_at")
        out.append((topic, key, rec, ts))
    return out


events = st.fixed_dictionaries(
    {k: st.integers(-(10**12), 10**12) | st.floats(allow_nan=False) | st.none() | st.booleans() for k in NUMS}
    | {"s": st.sampled_from([BAR["s"], BAR["e"] + 1, "x"]), "sym": st.sampled_from(["AAPL", "", 7])}
    | {"ev": st.sampled_from(["AM", "A", "status", "T"]), "otc": st.booleans() | st.none()}
)


@settings(max_examples=300, deadline=None)
@given(st.lists(events.map(lambda e: {**BAR, **e}), max_size=4))
def test_typed_path_sends_what_the_per_event_path_sends(frame: list[dict[str, Any]]) -> None:
    text = json.dumps(frame)
    fast, fast_stats = _run(text, typed=True)
    slow, slow_stats = _run(text, typed=False)
    assert _sent(fast) == _sent(slow)
    assert [(k, json.loads(p), e) for k, p, e in fast.dead] == [
        (k, json.loads(p), e) for k, p, e in slow.dead
    ]
    assert fast_stats.last_event_ms == slow_stats.last_event_ms


def test_the_usual_frame_takes_the_typed_path() -> None:
    frame = json.dumps([{"ev": "status", "status": "success"}, BAR, {**BAR, "ev": "A", "s": BAR["e"] - 1000}])
    assert type(decode_frame(frame)) is Events
    assert decode_frame(json.dumps([BAR, {**BAR, "o": "x"}])) is None  # one bad event: the per-event path
    sink, _ = _run(frame, typed=True)
    assert [k for _, k, _, _ in sink.sent] == ["AAPL", "AAPL"] and not sink.dead


def _repairer(client: FakeAggs, **kw: Any) -> tuple[Repairer, list[tuple[str, int]]]:
    got: list[tuple[str, int]] = []

    def emit(sym: str, bars: list[Any]) -> int:
        got.extend((sym, bar["t"]) for bar in bars)
        return len(bars)

    return Repairer(client, emit, concurrency=2, clock=lambda: 0.0, **kw), got  # type: ignore[arg-type]


class EndedAggs(FakeAggs):
    """Answers every minute up to ``now`` (the minutes that have ended), whatever ``to`` asks for."""

    now = 0

    def minute_bars(self, ticker: str, from_ms: int, to_ms: int) -> list[dict[str, Any]]:
        self.calls.append((ticker, from_ms, to_ms))
        return [{"t": t, "o": 1.0} for t in range(from_ms, min(to_ms, self.now - M) + 1, M)]


def test_a_subscribe_repairs_every_ticker_at_once_up_to_where_the_new_stream_begins() -> None:
    async def main() -> None:
        client = EndedAggs()
        r, got = _repairer(client, tickers=["AAPL", "MSFT", "XOM"], resume=Resume({"AAPL": 5 * M}, 3 * M))
        r.subscribed(1)  # start: AAPL from its tail, MSFT and XOM from the oldest minute read
        client.now = 6 * M
        assert r.observe("AAPL", 6 * M) and r.observe("MSFT", 6 * M)  # the stream begins at minute 6
        await r.drain(5)
        assert sorted(got) == [("MSFT", 4 * M), ("MSFT", 5 * M), ("XOM", 4 * M), ("XOM", 5 * M)]
        got.clear()
        r.observe("AAPL", 7 * M)
        client.now = 20 * M  # a reconnect after minutes 8..19 ended; no bar of the new stream yet
        r.subscribed(2)
        await r.drain(5)
        assert sorted(got) == sorted(
            [("AAPL", t * M) for t in range(8, 20)]
            + [("MSFT", t * M) for t in range(7, 20)]
            + [("XOM", t * M) for t in range(6, 20)]
        )
        assert not r.observe("AAPL", 19 * M)  # REST produced it first: the stream's copy is skipped
        assert r.observe("AAPL", 20 * M) and r.observe("XOM", 20 * M)
        assert r.as_dict() == {"repair_windows": 6, "repaired": len(got) + 4, "repair_failed": 0}
        r.close()

    asyncio.run(main())


def test_star_subscriptions_repair_the_tickers_seen_and_those_in_the_topic_tail() -> None:
    async def main() -> None:
        client = EndedAggs()
        r, got = _repairer(client, resume=Resume({"JPM": 2 * M}, 1 * M))
        client.now = 4 * M
        r.subscribed(1)
        await r.drain(5)
        assert got == [("JPM", 3 * M)]
        r.observe("NVDA", 4 * M)  # first seen: from the oldest minute read up to its bar
        await r.drain(5)
        assert ("NVDA", 2 * M) in got and ("NVDA", 4 * M) not in got
        got.clear()
        client.now = 9 * M
        r.subscribed(2)
        await r.drain(5)
        assert sorted(got) == [("JPM", t * M) for t in range(4, 9)] + [("NVDA", t * M) for t in range(5, 9)]
        r.close()

    asyncio.run(main())


def test_the_start_up_read_retries_a_partition_without_a_leader_yet() -> None:
    from confluent_kafka import KafkaError, KafkaException, TopicPartition

    from rtfin_cli.errors import ServiceUnavailable
    from rtfin_cli.producers.repair import _watermarks

    class NewTopic:
        """A consumer whose partition has no leader for its first two asks (as right after creation)."""

        def __init__(self, refusals: int, code: int = KafkaError.NOT_LEADER_FOR_PARTITION) -> None:
            self.refusals, self.code = refusals, code

        def get_watermark_offsets(self, tp: Any, timeout: float) -> tuple[int, int]:
            if self.refusals:
                self.refusals -= 1
                raise KafkaException(KafkaError(self.code))
            return 0, 7

    assert _watermarks(NewTopic(2), TopicPartition("t", 0), 5) == (0, 7)
    with pytest.raises(ServiceUnavailable, match=r"where t \[0\] ends"):
        _watermarks(NewTopic(1, KafkaError.TOPIC_AUTHORIZATION_FAILED), TopicPartition("t", 0), 5)
