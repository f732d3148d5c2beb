"""Parsing of news articles and WebSocket aggregates into the DESIGN.md records (incl. hypothesis fuzz)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rtfin_cli.producers.sink import Stats, Ticker
from rtfin_cli.producers.stocks import AggHandler
from rtfin_cli.sources.records import (
    InvalidRecord,
    agg_record,
    agg_value,
    iso_ms,
    loads,
    news_record,
    parse_utc_ms,
)

ARTICLE = {
    "id": "abc123",
    "published_utc": "2025-01-06T14:30:05Z",
    "title": "Apple Beats Estimates",
    "article_url": "https://x.example/a",
    "publisher": {"name": "Market Ledger", "homepage_url": "https://x.example"},
    "tickers": ["AAPL"],
    "keywords": ["earnings"],
    "description": "d",
    "author": "A",
    "insights": [{"ticker": "AAPL", "sentiment": "positive", "sentiment_reasoning": "beat", "x": 1}],
}
BAR = {
    "ev": "AM",
    "sym": "AAPL",
    "v": 100,
    "av": 1000,
    "op": 1.0,
    "vw": 1.5,
    "o": 1.0,
    "c": 2.0,
    "h": 2.1,
    "l": 0.9,
    "a": 1.4,
    "z": 10,
    "dv": "100.5",
    "dav": "1000.25",
    "s": 1_736_173_800_000,
    "e": 1_736_173_860_000,
}


def test_news_record_keeps_every_field_of_the_official_model() -> None:
    art_id, ts, rec = news_record(ARTICLE, "2025-01-06T14:30:06.000Z")
    assert art_id == "abc123" and ts == parse_utc_ms("2025-01-06T14:30:05Z") == 1_736_173_805_000
    assert rec["published_utc"] == "2025-01-06T14:30:05Z" and rec["ingested_at"] == "2025-01-06T14:30:06.000Z"
    assert set(rec) == {
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
    assert rec["insights"] == [{"ticker": "AAPL", "sentiment": "positive", "sentiment_reasoning": "beat"}]
    assert news_record({**ARTICLE, "insights": None})[2]["insights"] == []
    assert rec["publisher"] == {
        "name": "Market Ledger",
        "homepage_url": "https://x.example",
        "logo_url": None,
        "favicon_url": None,
    }


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"id": ""}, "no id"),
        ({"published_utc": "soon"}, "ISO-8601"),
        ({"title": None}, "no title"),
        ({"tickers": "AAPL"}, "tickers"),
        ({"article_url": 3}, "article_url"),
        ({"publisher": []}, "publisher"),
        ({"insights": {"ticker": "AAPL"}}, "insights must be a list of objects"),
        ({"insights": [{"sentiment": 1}]}, "sentiment must be a string"),
    ],
)
def test_invalid_articles_raise_with_the_reason(change: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidRecord, match=message):
        news_record({**ARTICLE, **change})


def test_times_without_zone_are_utc_and_ms_survive() -> None:
    assert parse_utc_ms("2025-01-06T14:30:05") == parse_utc_ms("2025-01-06T14:30:05+00:00")
    assert iso_ms(1_736_173_805_123) == "2025-01-06T14:30:05.123Z"


def test_agg_record_contract() -> None:
    sym, e, rec = agg_record(BAR, "now")
    assert (sym, e) == ("AAPL", BAR["e"]) and rec["otc"] is False
    assert (rec["op"], rec["dv"], rec["dav"]) == (1.0, "100.5", "1000.25")
    assert agg_record({**BAR, "otc": True}, "now")[2]["otc"] is True
    for bad in (
        {"ev": "T"},
        {"sym": ""},
        {"s": "x"},
        {"e": BAR["s"] - 1},
        {"o": float("nan")},
        {"v": True},
        {"av": "1"},
        {"op": "1"},
        {"dv": 100.5},
        {"z": loads("NaN")},
        {"h": None},
    ):
        with pytest.raises(InvalidRecord):
            agg_record({**BAR, **bad}, "now")
    assert agg_record(loads(json.dumps(BAR)), "now")[2]["o"] == 1.0


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=5), children, max_size=5)
    ),
    max_leaves=8,
)
scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=8)


@settings(max_examples=100, deadline=None)
@given(st.one_of(json_values, st.fixed_dictionaries({k: scalars for k in ARTICLE})))
def test_fuzz_article_parsing_only_ever_raises_invalid_record(raw: Any) -> None:
    try:
        art_id, _, rec = news_record(raw)
    except InvalidRecord:
        return
    assert rec["id"] == art_id and json.dumps(rec)


class RecordingSink:
    """Stands in for KafkaSink in a parser unit test: records what would be sent."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, str, bytes, int]] = []
        self.dead: list[tuple[str | None, str | bytes, str]] = []

    def send(self, topic: str, key: str, value: bytes, ts_ms: int) -> None:
        self.sent.append((topic, key, value, ts_ms))

    def dead_letter(self, key: str | None, payload: str | bytes, error: str) -> None:
        self.dead.append((key, payload, error))

    def poll(self) -> None:
        pass


def _handler() -> tuple[AggHandler, RecordingSink]:
    sink = RecordingSink()
    stats = Stats(source="polygon.stocks")
    return AggHandler(sink, "aggs", stats, Ticker(None, stats)), sink  # type: ignore[arg-type]


def _feed(handler: AggHandler, text: str) -> None:
    try:
        data = loads(text)
    except ValueError:
        data = None
    handler(data, text)


def test_frames_mix_status_good_and_bad_events() -> None:
    handler, sink = _handler()
    frame = json.dumps([{"ev": "status", "status": "success"}, BAR, {"ev": "AM", "sym": "X"}, 7])
    _feed(handler, frame)
    _feed(handler, "garbage{")
    assert [(t, k, ts) for t, k, _, ts in sink.sent] == [("aggs", "AAPL", BAR["e"])]
    assert len(sink.dead) == 3 and sink.dead[-1][1] == "garbage{"


@settings(max_examples=100, deadline=None)
@given(
    st.one_of(
        st.text(max_size=50),
        json_values.map(json.dumps),
        st.lists(st.fixed_dictionaries({k: scalars for k in BAR}), max_size=3).map(json.dumps),
    )
)
def test_fuzz_frames_never_crash_and_nothing_is_silently_dropped(text: str) -> None:
    handler, sink = _handler()
    _feed(handler, text)
    try:
        data = json.loads(text)
    except ValueError:
        data = None
    if isinstance(data, list):
        non_status = [e for e in data if not (isinstance(e, dict) and e.get("ev") == "status")]
        assert len(sink.sent) + len(sink.dead) == len(non_status)
    else:
        assert not sink.sent and len(sink.dead) == 1


@settings(max_examples=100, deadline=None)
@given(
    st.fixed_dictionaries(
        {
            k: st.integers(0, 10**12) | st.floats(-1e9, 1e9)
            for k in BAR
            if k not in ("ev", "sym", "s", "e", "dv", "dav")
        }  # fmt: skip
    ),
    st.text(min_size=1, max_size=6),
    st.booleans(),
    st.none() | st.text(max_size=8),
)
def test_fast_value_encoding_equals_the_record(nums: dict[str, Any], sym: str, otc: bool,
                                               dv: str | None) -> None:  # fmt: skip
    raw = {**BAR, **nums, "sym": sym, "otc": otc, "dv": dv}
    key, e, value = agg_value(raw, "2025-01-06T14:30:00.000Z")
    assert key == sym and json.loads(value) == agg_record(raw, "2025-01-06T14:30:00.000Z")[2]
