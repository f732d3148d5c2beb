"""Polygon/Massive aggregates REST client: minute bars of one ticker over a time range, for repairs.

``GET /v2/aggs/ticker/{ticker}/range/1/minute/{from}/{to}`` with ``adjusted=true``, ``sort=asc`` and
``limit`` (at most 50000 base aggregates a page), following ``next_url``; Bearer auth; 429 and 5xx are
retried with the news client's backoff (Retry-After when the server sends it). ``from`` and ``to`` are
epoch milliseconds, both inclusive, compared with each bar's start ``t``. The client is synchronous and
thread-safe (one connection pool): repairs run it on worker threads.

A result carries ``o h l c v vw t n`` (and ``otc`` when true): the names of the official client's ``Agg``
model. A repaired bar gets the same record mapping, key and identity (sym, ev = AM, s) as a streamed one:
``am_event`` turns a result into the minute-aggregate event the WebSocket would have carried (for
``records.agg_value``), and ``bar_values`` writes the same JSON objects straight from a page of ``Bar``s in
one msgspec call (pages are decoded and type-checked by msgspec, floats bounded at +-1e300 as the stream's
typed frames are, so a decoded ``Bar`` is finite; a page it refuses is decoded loosely and each result goes
through ``am_event``). The endpoint has no accumulated volume (``av``), day VWAP (``a``) or average trade size
(``z``): those stay null. Second aggregates (``A``) have no REST counterpart and cannot be repaired.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit

import msgspec

from rtfin_cli.errors import DataError, ServiceUnavailable
from rtfin_cli.sources.news import api_key, get_retrying
from rtfin_cli.sources.records import FiniteNum

if TYPE_CHECKING:
    from rtfin_cli.settings import PolygonSettings

MINUTE_MS = 60_000
MAX_LIMIT = 50_000


# A float beyond +-1e300 (or one that overflows to infinity) fails the typed page (``FiniteNum``, as in the
# stream's typed frames): its results then take the loose path, which names each bad one; so every decoded
# ``Bar`` is finite.


class Bar(msgspec.Struct):
    """One result of the aggregates endpoint (unknown fields are ignored)."""

    t: int
    o: FiniteNum
    h: FiniteNum
    l: FiniteNum  # noqa: E741 - the API's name
    c: FiniteNum
    v: FiniteNum
    vw: FiniteNum
    n: int | None = None
    otc: bool = False


class _Page(msgspec.Struct):
    results: list[Bar] = []
    next_url: str | None = None


class _Record(msgspec.Struct):
    """The stocks record of a repaired bar: ``records.agg_value``'s fields in its order, encoded by msgspec."""

    ev: str
    sym: str
    s: int
    e: int
    o: float | int
    h: float | int
    l: float | int  # noqa: E741 - the record's name
    c: float | int
    v: float | int
    vw: float | int
    av: None
    op: None
    a: None
    z: None
    dv: None
    dav: None
    otc: bool
    ingested_at: str


_ENCODER = msgspec.json.Encoder()


def bar_value(ticker: str, bar: Bar, ingested_at: str) -> tuple[int, bytes] | None:
    """(bar end ms, record value) of a typed bar: the JSON object ``agg_value(am_event(...))`` writes (same
    fields, order and values; a float may be spelled differently, e.g. 1e-6); None when a number is not
    finite or the ticker is empty (then the loose path explains it)."""
    if (bar.o + bar.h + bar.l + bar.c + bar.v + bar.vw) * 0 != 0 or not ticker:
        return None
    return bar.t + MINUTE_MS, bar_values(ticker, [bar], ingested_at)[0]


def bar_values(ticker: str, bars: list[Bar], ingested_at: str) -> list[bytes]:
    """``bar_value``'s record of each decoded bar (finite: see ``Bar``; ``ticker`` not empty), encoded in one
    msgspec call as JSON lines and split (JSON text has no raw newline: msgspec escapes it in strings)."""
    m = MINUTE_MS
    recs = [
        _Record("AM", ticker, b.t, b.t + m, b.o, b.h, b.l, b.c, b.v, b.vw, None, None, None, None, None, None,
                b.otc, ingested_at)
        for b in bars
    ]  # fmt: skip
    return _ENCODER.encode_lines(recs).split(b"\n")[:-1]


def am_event(ticker: str, bar: dict[str, Any]) -> dict[str, Any]:
    """The ``AM`` WebSocket event for one REST minute bar (fields the endpoint lacks are null)."""
    t = bar.get("t")
    return {
        "ev": "AM",
        "sym": ticker,
        "s": t,
        "e": t + MINUTE_MS if isinstance(t, int) and not isinstance(t, bool) else None,
        "o": bar.get("o"),
        "h": bar.get("h"),
        "l": bar.get("l"),
        "c": bar.get("c"),
        "v": bar.get("v"),
        "vw": bar.get("vw"),
        "av": None,
        "a": None,
        "z": None,
        "otc": bool(bar.get("otc", False)),
    }


class AggsClient:
    """Minute bars from the aggregates endpoint; one instance shares a connection pool between tasks."""

    def __init__(self, polygon: PolygonSettings, limit: int = MAX_LIMIT) -> None:
        import httpx

        self.polygon = polygon
        self.base = polygon.rest_url.rstrip("/")
        self.limit = max(1, min(MAX_LIMIT, limit))
        self.requests = 0
        self.retries = 0
        self.stop = threading.Event()  # set: retries give up at once
        self._http = httpx.Client(
            timeout=polygon.timeout_s,
            headers={"Authorization": f"Bearer {api_key(polygon, self.base)}", "User-Agent": "rtfin"},
            follow_redirects=True,
            limits=httpx.Limits(max_connections=64, max_keepalive_connections=64),
            verify=not self.base.startswith("http://"),  # no CA bundle to load for a plain-HTTP replay
        )

    def close(self) -> None:
        self.stop.set()
        self._http.close()

    def url(self, ticker: str, from_ms: int, to_ms: int) -> str:
        return f"{self.base}/v2/aggs/ticker/{quote(ticker, safe='')}/range/1/minute/{from_ms}/{to_ms}"

    def minute_bars(self, ticker: str, from_ms: int, to_ms: int) -> list[Bar | dict[str, Any]]:
        """Every minute bar of ``ticker`` starting in [from_ms, to_ms], oldest first, across pages: typed
        ``Bar``s, or the raw results of a page that did not type-check."""
        url: str | None = self.url(ticker, from_ms, to_ms)
        params: dict[str, Any] | None = {"adjusted": "true", "sort": "asc", "limit": self.limit}
        out: list[Bar | dict[str, Any]] = []
        while url is not None:
            page = self._page(self._get(url, params))
            out.extend(page.results)
            url, params = page.next_url, None  # next_url carries the query
        return out

    def _page(self, content: bytes) -> _Page | _LoosePage:
        try:
            return _DECODE(content)
        except msgspec.ValidationError:
            pass
        except msgspec.DecodeError:
            raise DataError(f"aggregates API at {self.base} returned invalid JSON") from None
        body = _loose(content, self.base)
        results = body.get("results") or []
        if not isinstance(results, list):
            raise DataError(f"aggregates API at {self.base} returned a non-list 'results'")
        nxt = body.get("next_url")
        return _LoosePage([r for r in results if isinstance(r, dict)], nxt if isinstance(nxt, str) else None)

    def _get(self, url: str, params: dict[str, Any] | None) -> bytes:
        path = urlsplit(url).path
        resp = get_retrying(
            self, self._http, url, params, api="aggregates API", base=self.base,
            max_retries=0 if self.stop.is_set() else self.polygon.max_retries, stop=self.stop, rejected=path,
            hint="Check polygon.rest_url and the requested tickers and time range.",
        )  # fmt: skip
        if resp is None:
            raise ServiceUnavailable(f"aggregates API at {self.base}: stopped while retrying {path}")
        return resp.content


_DECODE = msgspec.json.Decoder(_Page).decode


class _LoosePage(msgspec.Struct):
    results: list[dict[str, Any]]
    next_url: str | None


def _loose(content: bytes, base: str) -> dict[str, Any]:
    """A page that did not type-check, decoded as plain JSON (its bad results are dead-lettered later)."""
    import json

    try:
        body = json.loads(content)
    except ValueError:
        raise DataError(f"aggregates API at {base} returned invalid JSON") from None
    if not isinstance(body, dict):
        raise DataError(f"aggregates API at {base} returned {type(body).__name__}, expected an object")
    return body
