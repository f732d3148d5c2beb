"""Kafka records (DESIGN.md contracts) → rows of the raw tables, with validation.

A record that does not fit its table raises ``BadRecord`` naming the field; the loader sends it
to the dead-letter topic. Times become epoch milliseconds (DateTime64(3) ticks) so clickhouse-connect
writes them without per-value conversion.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

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
        return float(v)
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


def _publisher(v: Any) -> tuple[str, str, str, str]:
    if v is None:
        return ("", "", "", "")
    if not isinstance(v, dict):
        raise BadRecord("expected an object")
    return (
        _str(v.get("name")),
        _str(v.get("homepage_url")),
        _str(v.get("logo_url")),
        _str(v.get("favicon_url")),
    )


def _label(v: Any) -> str:
    if v not in LABELS:
        raise BadRecord(f"expected one of {', '.join(LABELS)}, got {v!r:.40}")
    return str(v)


def _unit(lo: float, hi: float) -> Callable[[Any], float]:
    def check(v: Any) -> float:
        x = _num(v)
        if not lo <= x <= hi:
            raise BadRecord(f"expected {lo:g}..{hi:g}, got {x:g}")
        return x

    return check


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


# table -> [(column, converter)]; columns in insert order (Kafka partition/offset appended).
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
        ("score", _unit(0.0, 1.0)),
        ("sentiment", _unit(-1.0, 1.0)),
        ("model", _str),
        ("scored_at", _time_ms),
    ],
}
KAFKA_COLUMNS = ["_kafka_partition", "_kafka_offset"]


def columns(table: str) -> list[str]:
    return [name for name, _ in SCHEMAS[table]] + KAFKA_COLUMNS


def to_row(
    table: str, value: bytes | str | dict[str, Any], partition: int = -1, offset: int = -1
) -> list[Any]:
    """One raw-table row from a record value; BadRecord names the offending field."""
    if isinstance(value, dict):
        doc = value
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
    row.append(partition)
    row.append(offset)
    return row
