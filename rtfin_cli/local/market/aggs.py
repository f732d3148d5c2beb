"""The replay server's aggregates endpoint and its connection-cutting fault.

``GET /v2/aggs/ticker/{ticker}/range/1/minute/{from}/{to}`` as the official Massive client
(massive-com/client-python, ``RESTClient.list_aggs`` and the ``Agg`` model) calls it: ``from``/``to``
as epoch ms or ``YYYY-MM-DD`` (a New York trading date, ``to`` inclusive), ``adjusted`` (true|false),
``sort`` (asc|desc), ``limit`` (1..50000), ``next_url`` paging with a cursor. Results carry
``o h l c v vw t n``: exactly the minute bars the WebSocket streams (same values, ``t`` = the event's
``s``), and only minutes that have ended on the replay clock. ``n`` (transactions) is derived from the
streamed average trade size ``z`` (``round(v / z)``); the stream has no other source for it.

The cut fault closes every WebSocket connection each ``cut_ws_every_s`` seconds (plus up to
``cut_ws_jitter_s``), alternating a close frame 1001 (going away) and a TCP abort (the client sees 1006).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import random
import re
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

from aiohttp import web

from rtfin_cli.local.market import dataset as ds

log = logging.getLogger("rtfin.market")
MAX_LIMIT = 50_000
NEW_YORK = ZoneInfo("America/New_York")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_MS = re.compile(r"^\d{1,15}$")


class BadRequest(ValueError):
    """A query the real endpoint refuses (HTTP 400 with this message)."""


def parse_bound(text: str, name: str, end: bool) -> int:
    """Epoch ms of a ``from``/``to`` path value: ms as is, a date as its New York day (``to``: the last ms)."""
    if _MS.match(text):
        return int(text)
    if _DATE.match(text):
        try:
            day = datetime.fromisoformat(text).replace(tzinfo=NEW_YORK)
        except ValueError:
            raise BadRequest(f"invalid {name} date: {text}") from None
        if end:
            day += timedelta(days=1)
        return int(day.timestamp() * 1000) - (1 if end else 0)
    raise BadRequest(
        f"Could not parse the {name} parameter: {text!r} is not a date (YYYY-MM-DD) or a ms timestamp"
    )


def query(params: dict[str, str]) -> tuple[int, str, bool]:
    """(limit, sort, adjusted) of a request's query, validated."""
    try:
        limit = int(params.get("limit", "5000"))
    except ValueError:
        raise BadRequest("limit must be an integer") from None
    if not 1 <= limit <= MAX_LIMIT:
        raise BadRequest(f"limit must be between 1 and {MAX_LIMIT}")
    sort = params.get("sort", "asc")
    if sort not in ("asc", "desc"):
        raise BadRequest("sort must be asc or desc")
    adjusted = params.get("adjusted", "true")
    if adjusted not in ("true", "false"):
        raise BadRequest("adjusted must be true or false")
    return limit, sort, adjusted == "true"


def _column(symbol: str) -> int | None:
    for i, t in enumerate(ds.tickers()):
        if t.symbol == symbol:
            return i
    return None


def bar_result(bar: dict[str, Any], shift_ms: int) -> dict[str, Any]:
    """One REST result for a streamed minute bar (``t`` = its shown start)."""
    return {
        "v": bar["v"],
        "vw": bar["vw"],
        "o": bar["o"],
        "c": bar["c"],
        "h": bar["h"],
        "l": bar["l"],
        "t": bar["s"] + shift_ms,
        "n": max(1, round(bar["v"] / bar["z"])),
    }


def minute_bars(symbol: str, lo_ms: int, hi_ms: int, now_ms: int, shift_ms: int) -> list[dict[str, Any]]:
    """REST results of ``symbol`` whose shown start is in [lo, hi] and that ended by ``now`` (dataset ms)."""
    col = _column(symbol)
    if col is None or hi_ms < lo_ms:
        return []
    lo, hi = lo_ms - shift_ms, min(hi_ms - shift_ms, now_ms - ds.MINUTE_MS)
    out: list[dict[str, Any]] = []
    for day, open_ms in enumerate(ds.trading_days()):
        close_ms = open_ms + ds.SESSION_MINUTES * ds.MINUTE_MS
        if close_ms <= lo or open_ms > hi:
            continue
        first = max(0, -(-(lo - open_ms) // ds.MINUTE_MS))
        last = min(ds.SESSION_MINUTES - 1, (hi - open_ms) // ds.MINUTE_MS)
        bars = ds.day_bars(day)
        out.extend(bar_result(bars[i][col], shift_ms) for i in range(first, last + 1))
    return out


def page(
    results: list[dict[str, Any]], limit: int, sort: str, from_ms: int, to_ms: int
) -> tuple[list[dict[str, Any]], tuple[int, int] | None]:
    """One page in ``sort`` order and, when more remain, the (from, to) of the next page's path."""
    ordered = results if sort == "asc" else results[::-1]
    if len(ordered) <= limit:
        return ordered, None
    head = ordered[:limit]
    last = head[-1]["t"]
    nxt = (last + 1, to_ms) if sort == "asc" else (from_ms, last - 1)
    return head, nxt


def cursor(limit: int, sort: str, adjusted: bool) -> str:
    raw = json.dumps({"limit": limit, "sort": sort, "adjusted": adjusted}).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def from_cursor(text: str) -> dict[str, str]:
    """The query a cursor stands for (limit, sort, adjusted as query-string values)."""
    try:
        state = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
        return {
            "limit": str(int(state["limit"])),
            "sort": str(state["sort"]),
            "adjusted": "true" if state["adjusted"] else "false",
        }
    except (ValueError, KeyError, TypeError):
        raise BadRequest("invalid cursor") from None


def sessions(shift_ms: int) -> list[dict[str, str]]:
    """Every replay session as shown: regular hours of each trading day, shifted like the served bars."""
    return [
        {
            "open": ds.iso(o + shift_ms),
            "close": ds.iso(o + shift_ms + ds.SESSION_MINUTES * ds.MINUTE_MS),
        }
        for o in ds.trading_days()
    ]


async def cut_connections(market: Any) -> None:
    """Runs for the server's life: while the cut fault is set, end every WebSocket connection each
    interval, alternating close 1001 and a TCP abort."""
    due: float | None = None
    loop = asyncio.get_running_loop()
    while True:
        await asyncio.sleep(0.05)
        every = market.faults.cut_ws_every_s
        if every <= 0:
            due = None
            continue
        if due is None:
            due = loop.time() + every + random.uniform(0, market.faults.cut_ws_jitter_s)
        if loop.time() < due:
            continue
        due = None
        abort = market.counters.get("ws_cuts", 0) % 2 == 1
        market.counters["ws_cuts"] = market.counters.get("ws_cuts", 0) + 1
        for conn in list(market.conns):
            with contextlib.suppress(Exception):
                if abort and conn.transport is not None:
                    conn.transport.abort()
                else:
                    await conn.ws.close(code=1001, message=b"going away")
        log.info("cut %d WebSocket connection(s) (%s)", len(market.conns), "abort" if abort else "close 1001")


Gate = Callable[[web.Request], Awaitable[web.Response | None]]
PATH = "/v2/aggs/ticker/{ticker}/range/{multiplier}/{timespan}/{from}/{to}"


def _error(status: int, message: str) -> web.Response:
    body = {"status": "ERROR", "request_id": uuid.uuid4().hex, "error": message}
    return web.json_response(body, status=status)


def add_routes(app: web.Application, market: Any, gate: Gate) -> None:
    """The aggregates endpoint (behind ``gate``: auth and the 429/5xx faults), ``/_control/sessions``,
    and the connection cutter running for the app's life."""

    async def aggs(request: web.Request) -> web.Response:
        if (refused := await gate(request)) is not None:
            return refused
        try:
            return _answer(request, market)
        except BadRequest as exc:
            return _error(400, str(exc))

    async def control_sessions(request: web.Request) -> web.Response:
        return web.json_response({"sessions": sessions(market.clock.shift_ms)})

    async def cutter(app: web.Application) -> AsyncIterator[None]:
        task = asyncio.create_task(cut_connections(market))
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    app.router.add_get(PATH, aggs)
    app.router.add_get("/_control/sessions", control_sessions)
    app.cleanup_ctx.append(cutter)


def _answer(request: web.Request, market: Any) -> web.Response:
    info = request.match_info
    if info["multiplier"] != "1" or info["timespan"] != "minute":
        raise BadRequest("the replay serves 1/minute aggregates only")
    params: dict[str, str] = dict(request.query)
    if "cursor" in params:
        params = {**params, **from_cursor(params["cursor"])}
    limit, sort, adjusted = query(params)
    lo, hi = parse_bound(info["from"], "from", False), parse_bound(info["to"], "to", True)
    if hi < lo:
        raise BadRequest("The 'to' date must be after the 'from' date")
    ticker = info["ticker"]
    results = minute_bars(ticker, lo, hi, market.clock.now(), market.clock.shift_ms)
    head, nxt = page(results, limit, sort, lo, hi)
    body: dict[str, Any] = {
        "ticker": ticker,
        "queryCount": len(head),
        "resultsCount": len(head),
        "adjusted": adjusted,
        "status": "OK",
        "request_id": uuid.uuid4().hex,
        "count": len(head),
    }
    if head:
        body["results"] = head
    if nxt is not None:
        path = PATH.format(
            ticker=quote(ticker, safe=""), multiplier=1, timespan="minute", **{"from": nxt[0], "to": nxt[1]}
        )
        body["next_url"] = f"{request.scheme}://{request.host}{path}?cursor={cursor(limit, sort, adjusted)}"
    return web.json_response(body)
