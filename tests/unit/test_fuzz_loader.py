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
        "insights": [{"ticker": "AAPL", "sentiment": "positive", "sentiment_reasoning": None}],
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


# -- batch conversion (records.to_columns) is to_row, value for value and reason for reason -----------
LITERALS = ["1e3", "1E3", "1.0", "-0", "0", "1e400", "-1e400", "123456789012345678901234567890", "NaN",
            "Infinity", "true", "false", "null", '"1"', '""', "[]", "{}", '"AM"', "1736260200000",
            "99999999999999", "100000000000000", '"\\ud800"']  # fmt: skip
TIMES = ["2025-01-07T14:30:00Z", "2025-01-07T14:30:00.123Z", "2025-01-07T14:30:00", "2025-01-07",
         "2025-01-07 14:30:00+05:30", "2025-01-07T14:30:00.123456789Z", "20250107T143000Z", "2025-W02-2",
         "1970-01-01T00:00:00Z", "1969-12-31T23:59:59Z", "9999-12-31T23:59:59Z", "2025-13-01T00:00:00Z",
         "", "yesterday"]  # fmt: skip
MARK = "@@literal@@"


@st.composite
def _record(draw: st.DrawFn, table: str) -> bytes | None:
    kind = draw(st.integers(0, 9))
    if kind == 0:
        return draw(st.none() | st.binary(max_size=40))
    doc: dict[str, Any] = dict(VALID[table])
    literal = None
    for _ in range(draw(st.integers(0, 2)) if kind > 3 else 0):
        field = draw(st.sampled_from([name for name, _ in SCHEMAS[table]]))
        how = draw(st.integers(0, 3))
        if how == 0:
            doc.pop(field, None)
        elif how == 1:
            doc[field] = draw(json_values)
        elif how == 2:
            doc[field] = draw(st.sampled_from(TIMES) | st.integers(-5, 10**15) | st.floats())
        elif literal is None:
            doc[field], literal = MARK, draw(st.sampled_from(LITERALS))
    text = json.dumps(doc, allow_nan=True)
    if literal is not None:
        text = text.replace(f'"{MARK}"', literal)
    return text.encode()


def _typed(v: Any) -> Any:
    """A value with its type spelled out (1 == 1.0 == True would hide a conversion difference)."""
    if isinstance(v, list | tuple):
        return (type(v).__name__, [_typed(x) for x in v])
    return (type(v).__name__, v)


@FUZZ
@given(table=st.sampled_from(TABLES), data=st.data())
def test_batch_conversion_is_to_row(table: str, data: st.DataObject) -> None:
    from rtfin_cli.warehouse.records import to_columns

    values = data.draw(st.lists(_record(table), max_size=80))
    parts, offs = [i % 3 for i in range(len(values))], list(range(len(values)))
    rows, reasons = [], []
    for i, v in enumerate(values):
        try:
            rows.append(to_row(table, v, parts[i], offs[i]))
        except BadRecord as exc:
            reasons.append((i, str(exc)))
    cols, bad = to_columns(table, values, parts, offs)
    assert bad == reasons
    assert len(cols) == len(columns(table))
    assert [_typed(c) for c in cols] == [_typed(list(c)) for c in zip(*rows, strict=True)] or (
        not rows and not any(cols)
    )


def test_batch_conversion_keeps_good_records_around_bad_ones() -> None:
    from rtfin_cli.warehouse.records import to_columns

    good = json.dumps(VALID["stock_aggs"]).encode()
    values: list[bytes | None] = [good] * 100
    values[7], values[50], values[99] = (
        b"{not json",
        None,
        json.dumps({**VALID["stock_aggs"], "o": "1"}).encode(),
    )
    values[60] = json.dumps({**VALID["stock_aggs"], "ingested_at": "2025-02-30T00:00:00Z"}).encode()
    cols, bad = to_columns("stock_aggs", values, [0] * 100, list(range(100)))
    assert [i for i, _ in bad] == [7, 50, 60, 99]
    assert "not JSON" in bad[0][1] and "empty value" in bad[1][1]
    assert "field 'ingested_at'" in bad[2][1] and "field 'o'" in bad[3][1]
    assert cols[-1] == [i for i in range(100) if i not in (7, 50, 60, 99)]


class _InsertContext:
    def __init__(self, names: list[str]) -> None:
        self.names, self.data = names, None


class _RejectingClient:
    """clickhouse-connect's insert-context API; rejects (as ClickHouse would) any block with sym 'BAD'."""

    def __init__(self) -> None:
        self.inserts: list[int] = []
        self.contexts = 0

    def create_insert_context(self, table: str, column_names: list[str], column_oriented: bool) -> Any:
        assert column_oriented
        self.contexts += 1
        return _InsertContext(column_names)

    def insert(self, context: _InsertContext) -> None:
        from clickhouse_connect.driver.exceptions import DatabaseError

        assert context.data is not None
        syms = context.data[context.names.index("sym")]
        if "BAD" in syms:
            raise DatabaseError("Code: 469. DB::Exception: Constraint `sym_ok` is violated at row 1.")
        self.inserts.append(len(syms))


class _Committing:
    def __init__(self) -> None:
        self.commits: list[Any] = []

    def commit(self, offsets: Any, asynchronous: bool) -> None:
        self.commits.append({(tp.topic, tp.partition): tp.offset for tp in offsets})


def _loader(client: Any, **kwargs: Any) -> tuple[Any, _RecordingProducer, _Committing, str]:
    """A Loader on ``client`` with a recording producer (delivering at once) and a committing consumer."""
    from rtfin_cli.settings import RtfinSettings
    from rtfin_cli.warehouse.loader import Loader

    s = RtfinSettings()
    prod, cons = _RecordingProducer(), _Committing()
    prod.flush = lambda timeout: 0  # type: ignore[attr-defined]
    return Loader(s, client=client, **kwargs), prod, cons, s.kafka.topics.stocks_aggs


def test_rows_clickhouse_rejects_are_bisected_out_and_dead_lettered() -> None:
    client = _RejectingClient()
    loader, prod, cons, topic = _loader(client, batch_rows=1000, insert_rows=30)
    values = [json.dumps({**VALID["stock_aggs"], "sym": "BAD" if i in (3, 70) else f"S{i}"}).encode()
              for i in range(100)]  # fmt: skip
    loader._start_worker()
    try:
        for start in range(0, 100, 25):
            loader._take([_Msg(topic, v, start + i) for i, v in enumerate(values[start : start + 25])], prod)  # type: ignore[misc]
        assert loader._flush(cons, prod)
    finally:
        loader._stop_worker()
    assert loader.stats.inserted["stock_aggs"] == 98 and sum(client.inserts) == 98
    assert client.contexts == 1  # the column types are asked once, not before every insert
    assert [(r["value"], r["headers"]["rtfin-error"][:24]) for r in prod.sent] == [
        (values[3], "rejected by ClickHouse: "),
        (values[70], "rejected by ClickHouse: "),
    ]
    assert cons.commits == [{(topic, 0): 100}]  # after the inserts, past the last offset


class _DownClient(_RejectingClient):
    def insert(self, context: _InsertContext) -> None:
        from clickhouse_connect.driver.exceptions import OperationalError

        raise OperationalError("HTTPConnectionPool: Connection refused")


def test_nothing_is_committed_when_stopped_while_clickhouse_is_down() -> None:
    import threading

    from rtfin_cli.settings import RtfinSettings
    from rtfin_cli.warehouse.loader import Loader

    s = RtfinSettings()
    loader = Loader(s, client=_DownClient(), insert_rows=10, max_backoff_s=0.05)  # type: ignore[arg-type]
    loader.client = lambda: _DownClient()  # type: ignore[method-assign,assignment,return-value]
    prod, cons = _RecordingProducer(), _Committing()
    topic = s.kafka.topics.stocks_aggs
    good = json.dumps(VALID["stock_aggs"]).encode()
    loader._start_worker()
    try:
        loader._take([_Msg(topic, good, i) for i in range(25)], prod)  # type: ignore[misc]
        threading.Timer(1.0, loader.stop).start()
        assert not loader._flush(cons, prod)
        assert not loader._flush(cons, prod)  # and not later either: those rows were never inserted
    finally:
        loader._stop_worker()
    assert loader.stats.retries >= 2 and loader.stats.inserted["stock_aggs"] == 0 and cons.commits == []


class _GatedClient(_RejectingClient):
    """Inserts wait until the test opens the gate."""

    def __init__(self) -> None:
        import threading

        super().__init__()
        self.gate = threading.Event()

    def insert(self, context: _InsertContext) -> None:
        assert self.gate.wait(10)
        super().insert(context)


def test_a_sealed_batch_is_committed_only_after_its_inserts_while_the_next_is_taken() -> None:
    import time

    client = _GatedClient()
    loader, prod, cons, topic = _loader(client, batch_rows=20, insert_rows=10)
    good = json.dumps(VALID["stock_aggs"]).encode()
    loader._start_worker()
    try:
        loader._take([_Msg(topic, good, i) for i in range(20)], prod)  # type: ignore[misc]
        assert loader._seal(cons, prod)  # batch 1 sealed; its inserts wait at the gate
        loader._take([_Msg(topic, good, i) for i in range(20, 25)], prod)  # type: ignore[misc]
        assert loader._commit(cons, prod, wait=False)
        assert cons.commits == []  # batch 1 is not inserted yet, so not committed
        client.gate.set()
        deadline = time.monotonic() + 10
        while not cons.commits and time.monotonic() < deadline:
            assert loader._commit(cons, prod, wait=False)
            time.sleep(0.01)
        assert cons.commits == [{(topic, 0): 20}]  # batch 1 only; batch 2 is still being taken
        assert loader._flush(cons, prod)
    finally:
        loader._stop_worker()
    assert cons.commits == [{(topic, 0): 20}, {(topic, 0): 25}]
    assert sum(client.inserts) == 25 and loader.stats.inserted["stock_aggs"] == 25
    assert loader.stats.batches == 2
