"""Fuzz (hypothesis) of the loader's record conversion: any Kafka value becomes a row of the right shape or a
BadRecord naming the field; the loader routes every bad record to the DLQ with the reason in its headers."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rtfin_cli.warehouse.records import SCHEMAS, BadRecord, columns, to_row

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
TABLES = sorted(SCHEMAS)
VALID: dict[str, dict[str, Any]] = {
    "news": {
        "id": "a1", "published_utc": "2025-01-07T14:30:00Z", "title": "AAPL up", "description": "d",
        "article_url": "https://x/1", "author": "me", "publisher": {"name": "P", "homepage_url": "h"},
        "tickers": ["AAPL"], "keywords": ["k"], "image_url": "", "amp_url": None,
        "ingested_at": "2025-01-07T14:30:01.123Z",
    },
    "stock_aggs": {
        "ev": "AM", "sym": "AAPL", "s": 1736260200000, "e": 1736260260000, "o": 1.0, "h": 2.0, "l": 0.5,
        "c": 1.5, "v": 100, "vw": 1.2, "av": 1000, "a": 1.1, "z": 10, "otc": False,
        "ingested_at": "2025-01-07T14:31:00Z",
    },
    "news_sentiment": {
        "id": "a1", "published_utc": "2025-01-07T14:30:00Z", "title": "t", "tickers": ["AAPL"],
        "label": "positive", "score": 0.9, "sentiment": 0.8, "model": "m", "scored_at": "2025-01-07T14:32:00Z",
    },
}  # fmt: skip

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=10,
)


def _convert(table: str, value: Any) -> list[Any] | BadRecord:
    try:
        row = to_row(table, value, 1, 2)
    except BadRecord as exc:
        assert str(exc), "a BadRecord without a reason"
        return exc
    assert len(row) == len(columns(table)) and row[-2:] == [1, 2]
    return row


def test_valid_records_convert() -> None:
    for table, doc in VALID.items():
        row = _convert(table, json.dumps(doc).encode())
        assert isinstance(row, list), row


@FUZZ
@given(table=st.sampled_from(TABLES), raw=st.binary(max_size=200))
def test_any_bytes_give_a_row_or_a_reason(table: str, raw: bytes) -> None:
    _convert(table, raw)


@FUZZ
@given(table=st.sampled_from(TABLES), doc=json_values)
def test_any_json_gives_a_row_or_a_reason(table: str, doc: Any) -> None:
    _convert(table, json.dumps(doc, allow_nan=True))


@FUZZ
@given(table=st.sampled_from(TABLES), data=st.data())
def test_one_bad_field_is_named(table: str, data: st.DataObject) -> None:
    doc = dict(VALID[table])
    field = data.draw(st.sampled_from([name for name, _ in SCHEMAS[table]]))
    doc[field] = data.draw(json_values)
    out = _convert(table, json.dumps(doc, allow_nan=True).encode())
    if isinstance(out, BadRecord):
        assert f"field '{field}'" in str(out), str(out)


class _Msg:
    def __init__(self, topic: str, value: bytes | None, offset: int) -> None:
        self._t, self._v, self._o = topic, value, offset

    def topic(self) -> str:
        return self._t

    def partition(self) -> int:
        return 0

    def offset(self) -> int:
        return self._o

    def value(self) -> bytes | None:
        return self._v

    def key(self) -> bytes:
        return b"k"


class _RecordingProducer:
    """Captures what the loader hands to Kafka's producer API (routing only; delivery is tested against
    the real broker in tests/integration/transform)."""

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []

    def produce(self, topic: str, value: Any = None, key: Any = None, headers: Any = None) -> None:
        self.sent.append({"topic": topic, "value": value, "headers": dict(headers or [])})

    def poll(self, timeout: float = 0) -> int:
        return 0


@FUZZ
@given(values=st.lists(st.none() | st.binary(max_size=80) | json_values.map(lambda v: json.dumps(v).encode()),
                       max_size=20))  # fmt: skip
def test_loader_routes_bad_records_to_the_dlq_with_a_reason(values: list[bytes | None]) -> None:
    from rtfin_cli.settings import RtfinSettings
    from rtfin_cli.warehouse.loader import STAGE, Loader

    s = RtfinSettings()
    loader = Loader(s)
    prod = _RecordingProducer()
    topic = s.kafka.topics.news_raw
    msgs = [_Msg(topic, value, i) for i, value in enumerate([*values, json.dumps(VALID["news"]).encode()])]
    loader._take(msgs, prod)  # type: ignore[arg-type]
    buffered = loader.buffered("news")
    assert buffered >= 1 and buffered + len(prod.sent) == len(values) + 1
    for rec in prod.sent:
        h = rec["headers"]
        assert rec["topic"] == s.kafka.topics.dlq
        assert h["rtfin-error"] and h["rtfin-source"] == topic and h["rtfin-stage"] == STAGE
