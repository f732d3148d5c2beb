"""A repair's emitter writes typed REST pages in one encode per window (``aggs.bar_values``): the records,
timestamps and header are those of the bar-by-bar mapping of streamed bars, and a page msgspec refuses (a
number beyond +-1e300, or one that overflows) takes the bar-by-bar path, which dead-letters the bad bar."""

from __future__ import annotations

import json
from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rtfin_cli.producers.repair import rest_emitter
from rtfin_cli.sources.aggs import Bar, am_event, bar_values
from rtfin_cli.sources.records import agg_value, loads
from tests.unit.test_sources_records import RecordingSink

M = 60_000
NUM = st.one_of(st.integers(-(2**53), 2**53), st.floats(-1e300, 1e300, allow_nan=False, allow_infinity=False))
RESULT = st.fixed_dictionaries(
    {"t": st.integers(0, 2**50), "o": NUM, "h": NUM, "l": NUM, "c": NUM, "v": NUM, "vw": NUM},
    optional={"n": st.integers(0, 10**6), "otc": st.booleans()},
)
TICKERS = st.sampled_from(["AAPL", "BRK.B", "Ä€", "A\nB", "null", '"}{'])


class BulkRecordingSink(RecordingSink):
    """RecordingSink with KafkaSink.send_many (what a repair calls) and the headers it was given."""

    def __init__(self) -> None:
        super().__init__()
        self.headers: list[Any] = []

    def send_many(self, topic: str, key: str, records: Any, headers: Any = None) -> None:
        for ts_ms, value in records:
            self.send(topic, key, value, ts_ms)
            self.headers.append(headers)


def _emit(ticker: str, bars: list[Any]) -> BulkRecordingSink:
    sink = BulkRecordingSink()
    assert rest_emitter(sink, "aggs")(ticker, bars) == len(sink.sent)  # type: ignore[arg-type]
    return sink


@settings(max_examples=60, deadline=None)
@given(TICKERS, st.lists(RESULT, max_size=12))
def test_a_typed_page_is_the_bar_by_bar_mapping(ticker: str, results: list[dict[str, Any]]) -> None:
    page = msgspec.json.decode(json.dumps({"results": results}), type=dict[str, list[Bar]])["results"]
    sink = _emit(ticker, page)  # type: ignore[arg-type]
    want = [agg_value(am_event(ticker, r), "x") for r in results]
    assert [(key, ts) for _, key, _, ts in sink.sent] == [(ticker, e) for _, e, _ in want]
    got = [json.loads(v) for _, _, v, _ in sink.sent]
    assert [{**g, "ingested_at": "x"} for g in got] == [json.loads(v) for _, _, v in want]
    assert [list(g) for g in got] == [list(json.loads(v)) for _, _, v in want]  # field order too
    assert all(h == [("rtfin-origin", b"rest")] for h in sink.headers) and not sink.dead
    assert bar_values(ticker, [], "x") == []


@pytest.mark.parametrize("bad", ["1e301", "-1e301", "1e400"])
def test_a_page_with_a_number_out_of_bounds_goes_bar_by_bar(bad: str) -> None:
    text = '{"results": [{"t": 0, "o": 1, "h": 2, "l": 1, "c": 1.5, "v": 10, "vw": 1.2}, {"t": 60000, '
    text += f'"o": {bad}, "h": 2, "l": 1, "c": 1.5, "v": 10, "vw": 1.2}}]}}'
    with pytest.raises(msgspec.ValidationError):
        msgspec.json.decode(text, type=dict[str, list[Bar]])
    sink = _emit("AAPL", loads(text)["results"])
    finite = bad != "1e400"  # 1e301 is a finite number the record carries; infinity is refused
    assert [ts for _, _, _, ts in sink.sent] == ([M, 2 * M] if finite else [M])
    assert len(sink.dead) == (0 if finite else 1)
