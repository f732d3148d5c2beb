"""Kafka records (DESIGN.md contracts) → rows of the raw tables, with validation.

A record that does not fit its table raises ``BadRecord`` naming the field; the loader sends it
to the dead-letter topic. Times become epoch milliseconds (DateTime64(3) ticks) so clickhouse-connect
writes them without per-value conversion.

``to_row`` converts one record. ``to_columns`` converts a batch: msgspec decodes and type-checks each
record in C against a struct derived from the same schema (a value it refuses goes to ``to_row``, which
says why), then the columns are built and finished (None → default, ISO times → ms) a column at a time.
A row it accepts is exactly ``to_row``'s; a record it rejects carries ``to_row``'s reason.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from functools import partial
from operator import attrgetter
from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta

LABELS = ("positive", "negative", "neutral")
EVENTS = ("AM", "A")


class BadRecord(ValueError):
    """A record that does not fit the raw table's schema."""


def _str(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, str):
        return v
    raise BadRecord(f"expected a string, got {type(v).__name__}")


def _req_str(v: Any) -> str:
    s = _str(v)
    if not s:
        raise BadRecord("missing or empty")
    return s


def _num(v: Any) -> float:
    t = type(v)
    if t is float and v - v == 0.0:  # finite (inf - inf and nan - nan are nan)
        return v  # type: ignore[no-any-return]
    if t is int:
        try:
            return float(v)
        except OverflowError:
            raise BadRecord(f"number out of range: {v!r:.40}") from None
    raise BadRecord(f"expected a finite number, got {v!r:.40}")


def _opt_num(v: Any) -> float:
    return 0.0 if v is None else _num(v)


def _epoch_ms(v: Any) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or not 0 < v < 10**14:
        raise BadRecord(f"expected epoch milliseconds, got {v!r:.40}")
    return int(v)


def _time_ms(v: Any) -> int:
    """ISO-8601 (naive = UTC) or epoch ms → epoch ms."""
    if isinstance(v, int) and not isinstance(v, bool):
        return _epoch_ms(v)
    if not isinstance(v, str) or not v:
        raise BadRecord(f"expected an ISO-8601 time, got {v!r:.40}")
    try:
        dt = datetime.fromisoformat(v)
    except ValueError:
        raise BadRecord(f"not an ISO-8601 time: {v!r:.40}") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    ms = int(dt.timestamp() * 1000)
    if not 0 < ms < 10**14:
        raise BadRecord(f"time out of range: {v!r:.40}")
    return ms


def _str_list(v: Any) -> list[str]:
    if v is None:
        return []
    if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
        raise BadRecord("expected a list of strings")
    return v


def _strings(v: Any, keys: tuple[str, ...]) -> tuple[str, ...]:  # an object's optional strings
    if not isinstance(v, dict):
        raise BadRecord("expected an object")
    return tuple(_str(v.get(k)) for k in keys)


def _publisher(v: Any) -> tuple[str, ...]:
    return ("", "", "", "") if v is None else _strings(v, ("name", "homepage_url", "logo_url", "favicon_url"))


def _insights(v: Any) -> list[tuple[str, ...]]:  # Massive's [{ticker, sentiment, sentiment_reasoning}]
    if v is not None and not isinstance(v, list):
        raise BadRecord("expected a list of objects")
    return [_strings(x, ("ticker", "sentiment", "sentiment_reasoning")) for x in v or ()]


def _label(v: Any) -> str:
    if v not in LABELS:
        raise BadRecord(f"expected one of {', '.join(LABELS)}, got {v!r:.40}")
    return str(v)


class _Unit:
    """A finite number within [lo, hi]."""

    def __init__(self, lo: float, hi: float) -> None:
        self.lo, self.hi = lo, hi

    def __call__(self, v: Any) -> float:
        x = _num(v)
        if not self.lo <= x <= self.hi:
            raise BadRecord(f"expected {self.lo:g}..{self.hi:g}, got {x:g}")
        return x


def _ev(v: Any) -> str:
    if v not in EVENTS:
        raise BadRecord(f"expected 'AM' or 'A', got {v!r:.40}")
    return str(v)


def _bool(v: Any) -> bool:
    if v is None:
        return False
    if not isinstance(v, bool):
        raise BadRecord(f"expected true/false, got {v!r:.40}")
    return v


# table -> [(column, converter)]; columns in insert order (the source position, KAFKA_COLUMNS, appended).
SCHEMAS: dict[str, list[tuple[str, Callable[[Any], Any]]]] = {
    "news": [
        ("id", _req_str),
        ("published_utc", _time_ms),
        ("title", _str),
        ("description", _str),
        ("article_url", _str),
        ("author", _str),
        ("publisher", _publisher),
        ("tickers", _str_list),
        ("keywords", _str_list),
        ("image_url", _str),
        ("amp_url", _str),
        ("insights", _insights),  # no msgspec type: converted by to_columns' default (a list per record)
        ("ingested_at", _time_ms),
    ],
    "stock_aggs": [
        ("ev", _ev),
        ("sym", _req_str),
        ("s", _epoch_ms),
        ("e", _epoch_ms),
        ("o", _num),
        ("h", _num),
        ("l", _num),
        ("c", _num),
        ("v", _num),
        ("vw", _opt_num),
        ("av", _opt_num),
        ("a", _opt_num),
        ("z", _opt_num),
        ("otc", _bool),
        ("ingested_at", _time_ms),
    ],
    "news_sentiment": [
        ("id", _req_str),
        ("published_utc", _time_ms),
        ("title", _str),
        ("tickers", _str_list),
        ("label", _label),
        ("score", _Unit(0.0, 1.0)),
        ("sentiment", _Unit(-1.0, 1.0)),
        ("model", _str),
        ("scored_at", _time_ms),
    ],
}
KAFKA_COLUMNS = ["_topic", "_partition", "_offset"]  # the source record's position


def columns(table: str) -> list[str]:
    return [name for name, _ in SCHEMAS[table]] + KAFKA_COLUMNS


Value = bytes | str | dict[str, Any] | None  # a record value as consumed, or already decoded


def to_row(table: str, value: Value, partition: int = -1, offset: int = -1, topic: str = "") -> list[Any]:
    """One raw-table row from a record value; BadRecord names the offending field."""
    if isinstance(value, dict):
        doc = value
    elif value is None:
        raise BadRecord("empty value")
    else:
        try:
            doc = json.loads(value)
        except (ValueError, UnicodeDecodeError) as exc:
            raise BadRecord(f"not JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise BadRecord("not a JSON object")
    get = doc.get
    try:
        row = [convert(get(name)) for name, convert in SCHEMAS[table]]
    except BadRecord:
        for name, convert in SCHEMAS[table]:  # slow path: name the offending field
            try:
                convert(get(name))
            except BadRecord as exc:
                raise BadRecord(f"field '{name}': {exc}") from None
        raise
    row += (topic, partition, offset)
    return row


# -- batch conversion -------------------------------------------------------------------------------
# For each converter of SCHEMAS: the msgspec type that accepts exactly the JSON values the converter
# accepts (strict: msgspec never coerces a string to a number or a number to a bool), whether the field
# may be missing, and how a decoded column becomes the converter's output. A finisher raises (BadRecord,
# ValueError) or returns None where some value needs to_row's judgement.
_MAX_MS = 10**14
_FLOAT_MAX = 1.7976931348623157e308
Column = list[Any]
_TZINFO = attrgetter("tzinfo")
_THOUSAND = 1000.0
_Finite = Annotated[float, Meta(ge=-_FLOAT_MAX, le=_FLOAT_MAX)]
_EpochMs = Annotated[int, Meta(gt=0, lt=_MAX_MS)]
_NonEmpty = Annotated[str, Meta(min_length=1)]


class _Publisher(msgspec.Struct, gc=False):
    name: str | None = None
    homepage_url: str | None = None
    logo_url: str | None = None
    favicon_url: str | None = None


def _default(value: Any) -> Callable[[Column], Column]:
    return lambda col: [value if v is None else v for v in col] if None in col else col


def _default_list(col: Column) -> Column:
    return [[] if v is None else v for v in col] if None in col else col


def _finish_time(col: Column) -> Column | None:
    types = set(map(type, col))
    if types == {int}:
        return col  # epoch ms, range checked by the decoder
    if types != {str}:
        return list(map(_time_ms, col))  # a mix of epoch ms and ISO strings
    texts = list(dict.fromkeys(col))  # each distinct time parsed once (a batch shares many)
    dts = list(map(datetime.fromisoformat, texts))
    if None in set(map(_TZINFO, dts)):
        dts = [dt if dt.tzinfo else dt.replace(tzinfo=UTC) for dt in dts]
    ms = list(map(int, map(_THOUSAND.__mul__, map(datetime.timestamp, dts))))  # to_row's arithmetic
    if not (min(ms) > 0 and max(ms) < _MAX_MS):
        return None
    return ms if len(texts) == len(col) else list(map(dict(zip(texts, ms, strict=True)).__getitem__, col))


def _finish_publisher(col: Column) -> Column:
    return [
        ("", "", "", "")
        if p is None
        else (p.name or "", p.homepage_url or "", p.logo_url or "", p.favicon_url or "")
        for p in col
    ]


def _same(col: Column) -> Column:
    return col


_REQUIRED = msgspec.NODEFAULT
_DECODED: dict[Callable[[Any], Any], tuple[Any, Any, Callable[[Column], Column | None]]] = {
    _num: (_Finite, _REQUIRED, _same),
    _opt_num: (_Finite | None, None, _default(0.0)),
    _str: (str | None, None, _default("")),
    _req_str: (_NonEmpty, _REQUIRED, _same),
    _epoch_ms: (_EpochMs, _REQUIRED, _same),
    _time_ms: (_EpochMs | _NonEmpty, _REQUIRED, _finish_time),
    _bool: (bool | None, None, _default(False)),
    _str_list: (list[str] | None, None, _default_list),
    _publisher: (_Publisher | None, None, _finish_publisher),
    _ev: (Literal[EVENTS], _REQUIRED, _same),
    _label: (Literal[LABELS], _REQUIRED, _same),
}


def _decoded(convert: Callable[[Any], Any]) -> tuple[Any, Any, Callable[[Column], Column | None]]:
    if isinstance(convert, _Unit):
        return Annotated[float, Meta(ge=convert.lo, le=convert.hi)], _REQUIRED, _same
    if convert in _DECODED:
        return _DECODED[convert]
    return Any, None, lambda col: list(map(convert, col))  # a converter without a msgspec type


class _Table:
    """A table's msgspec decoder and column finishers, derived from SCHEMAS."""

    def __init__(self, table: str) -> None:
        fields, self.finish = [], []
        for name, convert in SCHEMAS[table]:
            type_, default, finish = _decoded(convert)
            fields.append((name, type_, default))
            self.finish.append((attrgetter(name), finish))
        struct = msgspec.defstruct(f"_{table}", fields, kw_only=True, gc=False)
        self.decode: Callable[[Any], Any] = msgspec.json.Decoder(struct).decode

    def columns(self, records: list[Any]) -> list[Column] | None:
        out = []
        try:
            for get, finish in self.finish:
                col = finish(list(map(get, records)))
                if col is None:
                    return None
                out.append(col)
        except (BadRecord, ValueError, OverflowError):
            return None
        return out


_TABLES: dict[str, _Table] = {}
SMALL = 16  # a group this small whose columns need to_row's judgement is converted record by record


def _decode_or_none(decode: Callable[[Any], Any], value: bytes | None) -> Any:
    try:
        return decode(value)
    except (msgspec.DecodeError, TypeError):
        return None


def to_columns(
    table: str,
    values: Sequence[bytes | None],
    partitions: Sequence[int],
    offsets: Sequence[int],
    topic: str = "",
) -> tuple[list[Column], list[tuple[int, str]]]:
    """Records → (columns in ``columns(table)`` order of those that fit, [(index, reason)] of the others).

    The columns hold what ``to_row`` gives, in input order; every record ``to_row`` rejects is listed
    with its reason, and no other.
    """
    t = _TABLES.get(table) or _TABLES.setdefault(table, _Table(table))
    try:
        records = list(map(t.decode, values))
    except (msgspec.DecodeError, TypeError):  # some record needs to_row's judgement
        records = list(map(partial(_decode_or_none, t.decode), values))
    out: list[Column] = [[] for _ in columns(table)]
    bad: list[tuple[int, str]] = []

    def one_by_one(lo: int, hi: int) -> None:
        for i in range(lo, hi):
            try:
                row = to_row(table, values[i], partitions[i], offsets[i], topic)
            except BadRecord as exc:
                bad.append((i, str(exc)))
                continue
            for dst, v in zip(out, row, strict=True):
                dst.append(v)

    def convert(lo: int, hi: int) -> None:
        cols = t.columns(records[lo:hi])
        if cols is None and hi - lo > SMALL:
            mid = (lo + hi) // 2
            convert(lo, mid)
            convert(mid, hi)
        elif cols is None:
            one_by_one(lo, hi)
        else:
            for dst, src in zip(out, cols, strict=False):
                dst.extend(src)
            out[-3].extend([topic] * (hi - lo))
            out[-2].extend(partitions[lo:hi])
            out[-1].extend(offsets[lo:hi])

    start = 0
    for i in [i for i, r in enumerate(records) if r is None] if None in records else []:
        if start < i:
            convert(start, i)
        one_by_one(i, i + 1)
        start = i + 1
    if start < len(records):
        convert(start, len(records))
    return out, bad
