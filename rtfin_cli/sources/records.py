"""Validation of source payloads into the DESIGN.md record contracts (pure functions, no I/O).

Anything that does not validate raises ``InvalidRecord``; producers send it to the dead-letter topic.
"""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from json.encoder import encode_basestring as _json_str  # type: ignore[attr-defined]
from typing import Annotated, Any

import msgspec

# Every field of the official client's models is kept (massive: rest/models/tickers.py TickerNews and
# Insight, websocket/models/models.py EquityAgg).
NEWS_STR_FIELDS = ("description", "author", "image_url", "amp_url")
INSIGHT_FIELDS = ("ticker", "sentiment", "sentiment_reasoning")
AGG_REQUIRED_NUM = ("o", "h", "l", "c", "v", "vw")
AGG_OPTIONAL_NUM = ("av", "op", "a", "z")
AGG_OPTIONAL_STR = ("dv", "dav")  # fractional volume and accumulated volume, as decimal strings


class InvalidRecord(ValueError):
    """A payload that does not satisfy its record contract."""


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_utc_ms(value: Any) -> int:
    """Epoch ms of an ISO-8601 time; a naive time is taken as UTC."""
    if not isinstance(value, str) or not value:
        raise InvalidRecord(f"published_utc must be an ISO-8601 string, got {value!r}")
    try:
        dt = datetime.fromisoformat(value.replace("Z", "+00:00") if value.endswith("Z") else value)
    except ValueError:
        raise InvalidRecord(f"published_utc is not ISO-8601: {value!r}") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return int(dt.timestamp() * 1000)


def iso_ms(ms: int) -> str:
    """``2025-01-06T14:30:00Z`` (seconds) or with milliseconds when they are not zero."""
    dt = datetime.fromtimestamp(ms / 1000, UTC)
    return (
        dt.strftime("%Y-%m-%dT%H:%M:%SZ")
        if ms % 1000 == 0
        else dt.isoformat(timespec="milliseconds")[:-6] + "Z"
    )


def _opt_str(raw: dict[str, Any], key: str) -> str | None:
    value = raw.get(key)
    if value is None or isinstance(value, str):
        return value
    raise InvalidRecord(f"{key} must be a string, got {type(value).__name__}")


def _str_list(raw: dict[str, Any], key: str) -> list[str]:
    value = raw.get(key) or []
    if not isinstance(value, list) or not all(isinstance(x, str) for x in value):
        raise InvalidRecord(f"{key} must be a list of strings")
    return value


def _insights(raw: dict[str, Any], art_id: str) -> list[dict[str, str | None]]:
    """The provider's per-ticker sentiment with its reasoning (an empty list when the article has none)."""
    value = raw.get("insights")
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(x, dict) for x in value):
        raise InvalidRecord(f"article {art_id}: insights must be a list of objects")
    return [{key: _opt_str(x, key) for key in INSIGHT_FIELDS} for x in value]


def news_record(raw: Any, ingested_at: str | None = None) -> tuple[str, int, dict[str, Any]]:
    """(id, published ms, record) of a /v2/reference/news result, or InvalidRecord."""
    if not isinstance(raw, dict):
        raise InvalidRecord(f"article must be a JSON object, got {type(raw).__name__}")
    art_id = raw.get("id")
    if not isinstance(art_id, str) or not art_id.strip():
        raise InvalidRecord("article has no id")
    published = parse_utc_ms(raw.get("published_utc"))
    title = raw.get("title")
    if not isinstance(title, str) or not title.strip():
        raise InvalidRecord(f"article {art_id} has no title")
    url = raw.get("article_url")
    if not isinstance(url, str) or not url:
        raise InvalidRecord(f"article {art_id} has no article_url")
    pub = raw.get("publisher")
    pub = {} if pub is None else pub
    if not isinstance(pub, dict):
        raise InvalidRecord(f"article {art_id}: publisher must be an object")
    record: dict[str, Any] = {
        "id": art_id,
        "published_utc": iso_ms(published),
        "title": title,
        "article_url": url,
        "publisher": {k: _opt_str(pub, k) for k in ("name", "homepage_url", "logo_url", "favicon_url")},
        "tickers": _str_list(raw, "tickers"),
        "keywords": _str_list(raw, "keywords"),
    }
    for key in NEWS_STR_FIELDS:
        record[key] = _opt_str(raw, key)
    record["insights"] = _insights(raw, art_id)
    record["ingested_at"] = ingested_at or now_iso()
    return art_id, published, record


def _num(raw: dict[str, Any], key: str, required: bool) -> float | int | None:
    value = raw.get(key)
    if value is None and not required:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InvalidRecord(f"{key} must be a finite number, got {value!r}")
    return value


def _finite(x: float) -> bool:
    return x - x == 0  # False for NaN and +-Infinity (a sum of numbers is finite only if all are)


_NUM = frozenset((int, float))
_OPT_NUM = frozenset((int, float, type(None)))
_OPT_STR = frozenset((str, type(None)))
_EVENTS = frozenset(("AM", "A"))


Fields = tuple[str, str, int, int, Any, Any, Any, Any, Any, Any, Any, Any, Any, Any, Any, Any, bool]
AGG_KEYS = ("ev", "sym", "s", "e", "o", "h", "l", "c", "v", "vw", "av", "op", "a", "z", "dv", "dav", "otc")


def _fields(raw: Any) -> Fields | None:
    """(ev, sym, s, e, o, h, l, c, v, vw, av, op, a, z, dv, dav, otc) of a valid AM/A event, else None.

    The hot path of `rtfin produce stocks`: subscripts and one type check per field (``type(x) in ...`` also
    rejects bools); NaN/Infinity never get this far because frames are decoded with ``loads`` below.
    """
    if type(raw) is not dict:
        return None
    try:
        ev, sym, s, e = raw["ev"], raw["sym"], raw["s"], raw["e"]
        o, h, lo, c, v, vw = raw["o"], raw["h"], raw["l"], raw["c"], raw["v"], raw["vw"]
    except KeyError:
        return None
    g = raw.get
    av, op, a, z, dv, dav = g("av"), g("op"), g("a"), g("z"), g("dv"), g("dav")
    if (
        ev in _EVENTS
        and type(sym) is str
        and sym
        and type(s) is int
        and type(e) is int
        and s <= e
        and type(o) in _NUM
        and type(h) in _NUM
        and type(lo) in _NUM
        and type(c) in _NUM
        and type(v) in _NUM
        and type(vw) in _NUM
        and type(av) in _OPT_NUM
        and type(op) in _OPT_NUM
        and type(a) in _OPT_NUM
        and type(z) in _OPT_NUM
        and type(dv) in _OPT_STR
        and type(dav) in _OPT_STR
        and _finite(o + h + lo + c + v + vw + (av or 0) + (op or 0) + (a or 0) + (z or 0))
    ):
        return ev, sym, s, e, o, h, lo, c, v, vw, av, op, a, z, dv, dav, g("otc") is True
    return None


def agg_record(raw: Any, ingested_at: str) -> tuple[str, int, dict[str, Any]]:
    """(ticker, bar end ms, record) of an AM/A WebSocket event, or InvalidRecord naming the problem."""
    f = _fields(raw)
    if f is None:
        _explain_agg(raw)
        raise InvalidRecord("invalid aggregate event")  # pragma: no cover - _explain_agg always raises
    return f[1], f[3], {**dict(zip(AGG_KEYS, f, strict=True)), "ingested_at": ingested_at}


def agg_value(raw: Any, ingested_at: str) -> tuple[str, int, bytes]:
    """(ticker, bar end ms, JSON value) of an event: the ``agg_record`` record, encoded without building it.

    Floats are written with ``repr`` (the shortest round-trip form, valid JSON for finite numbers)."""
    f = _fields(raw)
    if f is None:
        _explain_agg(raw)
        raise InvalidRecord("invalid aggregate event")  # pragma: no cover - _explain_agg always raises
    ev, sym, s, e, o, h, lo, c, v, vw, av, op, a, z, dv, dav, otc = f
    text = (
        f'{{"ev":"{ev}","sym":{_json_str(sym)},"s":{s},"e":{e},"o":{o!r},"h":{h!r},"l":{lo!r},"c":{c!r},'
        f'"v":{v!r},"vw":{vw!r},"av":{"null" if av is None else repr(av)},'
        f'"op":{"null" if op is None else repr(op)},'
        f'"a":{"null" if a is None else repr(a)},"z":{"null" if z is None else repr(z)},'
        f'"dv":{"null" if dv is None else _json_str(dv)},"dav":{"null" if dav is None else _json_str(dav)},'
        f'"otc":{"true" if otc else "false"},"ingested_at":"{ingested_at}"}}'
    )
    return sym, e, text.encode()


# The typed frame path: msgspec decodes and checks a whole frame in C. It accepts only what ``_fields``
# accepts (a float beyond +-1e300 is left to the checked path, so the sum in ``_fields`` cannot overflow),
# and writes the record ``agg_value`` writes (same fields and order; a float may be spelled differently,
# e.g. 1e-6). A frame it refuses in any way takes the per-event path, which names each problem.
FiniteNum = int | Annotated[float, msgspec.Meta(ge=-1e300, le=1e300)]  # also the REST bars' (sources.aggs)
_Sym = Annotated[str, msgspec.Meta(min_length=1)]


class AggEvent(msgspec.Struct, tag_field="ev", gc=False):
    """An aggregate event as the stream sends it, and (with ``ingested_at`` set) its stocks record."""

    sym: _Sym
    s: int
    e: int
    o: FiniteNum
    h: FiniteNum
    l: FiniteNum  # noqa: E741 - the feed's name
    c: FiniteNum
    v: FiniteNum
    vw: FiniteNum
    av: FiniteNum | None = None
    op: FiniteNum | None = None
    a: FiniteNum | None = None
    z: FiniteNum | None = None
    dv: str | None = None
    dav: str | None = None
    otc: bool = False
    ingested_at: str = ""


class MinuteAgg(AggEvent, tag="AM"):
    pass


class SecondAgg(AggEvent, tag="A"):
    pass


class StatusEvent(msgspec.Struct, tag_field="ev", tag="status", gc=False):
    status: str = ""
    message: str = ""


class Events(list[MinuteAgg | SecondAgg | StatusEvent]):
    """A frame whose every event decoded and type-checked (``decode_frame``)."""


_DECODE_FRAME = msgspec.json.Decoder(list[MinuteAgg | SecondAgg | StatusEvent]).decode
encode_event = msgspec.json.Encoder().encode


def decode_frame(text: str | bytes) -> Events | None:
    """Every event of a frame, typed, in one pass; None when anything in it does not pass (the caller then
    decodes it with ``loads`` and checks event by event). ``s <= e`` is left to the caller's loop."""
    try:
        return Events(_DECODE_FRAME(text))
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None


def _explain_agg(raw: Any) -> None:
    """Raise InvalidRecord naming the first problem of an event the fast path rejected."""
    if not isinstance(raw, dict):
        raise InvalidRecord(f"event must be a JSON object, got {type(raw).__name__}")
    ev = raw.get("ev")
    if ev not in ("AM", "A"):
        raise InvalidRecord(f"unsupported event type {ev!r}")
    sym = raw.get("sym")
    if not isinstance(sym, str) or not sym:
        raise InvalidRecord(f"{ev} event has no sym")
    s, e = raw.get("s"), raw.get("e")
    if type(s) is not int or type(e) is not int or e < s:
        raise InvalidRecord(f"{ev} {sym}: s and e must be epoch-ms integers with s <= e (got {s!r}, {e!r})")
    for key in AGG_REQUIRED_NUM:
        _num(raw, key, True)
    for key in AGG_OPTIONAL_NUM:
        _num(raw, key, False)
    for key in AGG_OPTIONAL_STR:
        _opt_str(raw, key)


class _NotFinite:
    """What NaN / Infinity decode to: not a number type, so validation rejects it."""

    def __init__(self, token: str) -> None:
        self.token = token

    def __repr__(self) -> str:
        return self.token


def loads(text: str | bytes) -> Any:
    """json.loads that turns NaN/Infinity into a non-number (JSON has no such values)."""
    return json.loads(text, parse_constant=_NotFinite)


_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)


def dumps_raw(value: Any) -> str:
    """JSON text of a decoded payload for the dead-letter topic (NaN/Infinity written back as received)."""
    return json.dumps(value, default=lambda o: float(o.token) if isinstance(o, _NotFinite) else repr(o))


def dumps(record: Any) -> bytes:
    return _ENCODER.encode(record).encode()
