"""The local market replay server: Polygon/Massive news REST + stocks WebSocket over one aiohttp app.

    python -m rtfin_cli.local.market --port 8765 --speed 60

* ``GET /v2/reference/news``: published_utc[.gt|.gte|.lt|.lte], ticker, order, sort, limit (<= 1000),
  ``next_url`` with an opaque cursor, ``apiKey`` or ``Authorization: Bearer``, 429 + Retry-After over
  ``--rate-limit`` requests/s.
* ``/stocks`` WebSocket: status connected -> auth -> auth_success/auth_failed -> subscribe AM.*, A.AAPL, ...
  -> JSON arrays of events.
* ``GET /v2/aggs/ticker/{ticker}/range/1/minute/{from}/{to}``: the streamed minute bars over REST
  (``aggs``), behind the same gate (key, rate limit, 429/5xx faults).
* ``/_control/*``: status, clock, faults (drop_ws, burst_429, http_5xx, malformed_frames, auth_fail,
  max_connections, cut_ws_every_s/cut_ws_jitter_s), emitted (what was served: article ids and bar keys),
  sessions, reset.

The replay clock maps wall time to dataset time (``speed`` dataset seconds per wall second); every
timestamp served is shifted by a whole number of minutes so that the replay start looks like "now".
Only articles and bars whose dataset time has passed are visible.
"""

from __future__ import annotations

import asyncio
import base64
import bisect
import json
import logging
import math
import uuid
from typing import Any

from aiohttp import web

from rtfin_cli.local.market import aggs
from rtfin_cli.local.market import dataset as ds
from rtfin_cli.local.market.replay import MARKET, Faults, Market
from rtfin_cli.local.market.stream import stocks_handler

__all__ = ["MARKET", "Market", "make_app", "serve"]

log = logging.getLogger("rtfin.market")


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> web.Response:
    body = {"status": "ERROR", "request_id": uuid.uuid4().hex, "error": message}
    return web.json_response(body, status=status, headers=headers)


def _bound(value: str, name: str) -> int:
    try:
        if len(value) == 10:  # a date
            value += "T00:00:00Z"
        return ds.parse_ms(value)
    except ValueError:
        raise web.HTTPBadRequest(
            text=json.dumps({"status": "ERROR", "error": f"invalid {name}: {value}"}),
            content_type="application/json",
        ) from None


# -- news REST ---------------------------------------------------------------------------------------
async def gate(request: web.Request) -> web.Response | None:
    """What every REST request meets first: latency, the API key, rate limiting and the 429/5xx faults;
    the refusal to send, or None to go on."""
    m: Market = request.app[MARKET]
    m.counters["requests"] += 1
    if m.faults.latency_s > 0:
        await asyncio.sleep(m.faults.latency_s)
    key = (
        request.query.get("apiKey")
        or request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
    )
    if not key:
        return _error(401, "API Key was not provided")
    if m.faults.auth_fail:
        return _error(401, "Unknown API Key")
    if m.faults.burst_429 > 0 or not m.take_token():
        m.faults.burst_429 = max(0, m.faults.burst_429 - 1)
        m.counters["rate_limited"] += 1
        retry = m.faults.retry_after if m.rate_limit <= 0 else max(m.faults.retry_after, 1 / m.rate_limit)
        return _error(429, "You've exceeded the maximum requests per minute.", {"Retry-After": f"{retry:g}"})
    if m.faults.http_5xx > 0:
        m.faults.http_5xx -= 1
        return _error(503, "Service temporarily unavailable")
    return None


class _Refused(Exception):
    def __init__(self, message: str) -> None:
        self.message = message


def _news_query(query: dict[str, str]) -> tuple[dict[str, str], list[Any] | None, int, str]:
    """(params, position after which the page starts, limit, order) of a request or its cursor."""
    params, after = query, None
    if "cursor" in params:
        try:
            state = json.loads(base64.urlsafe_b64decode(params["cursor"].encode()))
            params, after = state["q"], state["after"]
        except (ValueError, KeyError, TypeError):
            raise _Refused("invalid cursor") from None
    try:
        limit = max(1, min(1000, int(params.get("limit", "10"))))
    except ValueError:
        raise _Refused("limit must be an integer between 1 and 1000") from None
    order = params.get("order", "desc")
    if order not in ("asc", "desc") or params.get("sort", "published_utc") != "published_utc":
        raise _Refused("order must be asc|desc and sort must be published_utc")
    return params, after, limit, order


def _window(m: Market, params: dict[str, str]) -> tuple[int, int]:
    """The index range of visible articles (dataset time has passed) within the published_utc bounds."""
    shift = m.clock.shift_ms
    lo, hi = 0, bisect.bisect_right(m.times, m.clock.now())
    for suffix, op in (("", "eq"), (".gte", "gte"), (".gt", "gt"), (".lte", "lte"), (".lt", "lt")):
        if (raw := params.get("published_utc" + suffix)) is not None:
            t = _bound(raw, "published_utc" + suffix) - shift
            if op in ("gte", "eq"):
                lo = max(lo, bisect.bisect_left(m.times, t))
            if op == "gt":
                lo = max(lo, bisect.bisect_right(m.times, t))
            if op in ("lte", "eq"):
                hi = min(hi, bisect.bisect_right(m.times, t))
            if op == "lt":
                hi = min(hi, bisect.bisect_left(m.times, t))
    return lo, hi


def _page(
    m: Market, params: dict[str, str], after: list[Any] | None, limit: int, order: str
) -> tuple[list[int], bool]:
    """The article indexes of one page, and whether more follow."""
    lo, hi = _window(m, params)
    idx = range(lo, hi) if order == "asc" else range(hi - 1, lo - 1, -1)
    ticker = params.get("ticker")
    page: list[int] = []
    for i in idx:
        if ticker and ticker not in m.articles[i]["tickers"]:
            continue
        pos = [m.times[i], m.articles[i]["id"]]
        if after is not None and (pos <= after if order == "asc" else pos >= after):
            continue
        if len(page) == limit:
            return page, True
        page.append(i)
    return page, False


def _served(m: Market, page: list[int]) -> list[dict[str, Any]]:
    """The page's articles as served (recorded as emitted; the malformed-articles fault applied)."""
    results = [m.article(i) for i in page]
    for art in results:
        m.emitted_articles[art["id"]] = None
        if m.faults.malformed_articles > 0:  # served once without a usable timestamp
            m.faults.malformed_articles -= 1
            art["published_utc"] = "yesterday-ish"
            m.malformed_articles.append(art["id"])
    return results


async def news_handler(request: web.Request) -> web.Response:
    """``GET /v2/reference/news``: one page of visible articles, with ``next_url`` when more follow."""
    if (refused := await gate(request)) is not None:
        return refused
    m: Market = request.app[MARKET]
    try:
        params, after, limit, order = _news_query(dict(request.query))
    except _Refused as exc:
        return _error(400, exc.message)
    page, more = _page(m, params, after, limit, order)
    results = _served(m, page)
    body: dict[str, Any] = {
        "results": results,
        "status": "OK",
        "request_id": uuid.uuid4().hex,
        "count": len(results),
    }
    if more:
        last = page[-1]
        cursor = json.dumps({"q": params, "after": [m.times[last], m.articles[last]["id"]]})
        base = f"{request.scheme}://{request.host}"
        body["next_url"] = (
            f"{base}/v2/reference/news?cursor={base64.urlsafe_b64encode(cursor.encode()).decode()}"
        )
    return web.json_response(body)


# -- control ----------------------------------------------------------------------------------------
def _session(m: Market, now: int) -> dict[str, Any]:
    """Whether the replayed market is open, since when or until which next open (shown times)."""
    loop = m.clock.skip_closed
    pos = ds.session_index(now - now % ds.MINUTE_MS, loop)
    if pos is not None:
        lap = ds.lap_split(now)[0] if loop else 0
        return {
            "market_open": True,
            "session_open": ds.iso(m.shown(ds.trading_days()[pos[0]] + lap * ds.LAP_MS)),
            "next_open": None,
        }
    nxt = ds.next_session_minute(now, loop)
    return {"market_open": False, "session_open": None, "next_open": ds.iso(m.shown(nxt)) if nxt else None}


def status_doc(m: Market, after: str | None = None) -> dict[str, Any]:
    """The replay's clock and counters; ``now``, the session, the newest article and ``next_article`` (the
    first one published after ``after``, a shown time: what a producer that has ``after`` still lacks) are
    what `rtfin lag` measures data age and quiet or stalled sources on."""
    now = m.clock.now()
    visible = bisect.bisect_right(m.times, now)
    nxt = bisect.bisect_right(m.times, ds.parse_ms(after) - m.clock.shift_ms) if after else visible
    return {
        "now": ds.iso(m.shown(now)),
        **_session(m, now),
        "newest_article": ds.iso(m.shown(m.times[visible - 1])) if visible else None,
        "next_article": ds.iso(m.shown(m.times[nxt])) if nxt < visible else None,
        "dataset_now": ds.iso(now),
        "speed": m.clock.speed,
        "skip_closed": m.clock.skip_closed,
        "finished": m.clock.finished,
        "end": ds.iso(m.shown(m.clock.end_ms)),
        "shift_ms": m.clock.shift_ms,
        "articles_visible": visible,
        "articles_total": len(m.times),
        "connections": len(m.conns),
        "subscriptions": sorted({s for c in m.conns for s in c.subs}),
        "faults": m.faults.as_dict(),
        "counters": dict(m.counters),
        "rate_limit": m.rate_limit,
        "emitted": {"articles": len(m.emitted_articles), "bars": len(m.emitted_bars)},
    }


async def control_status(request: web.Request) -> web.Response:
    after = request.query.get("after")
    try:
        return web.json_response(status_doc(request.app[MARKET], after))
    except ValueError:
        raise web.HTTPBadRequest(text=f"invalid after: {after} (an ISO-8601 time)") from None


async def control_emitted(request: web.Request) -> web.Response:
    m: Market = request.app[MARKET]
    return web.json_response(
        {
            "articles": list(m.emitted_articles),
            "bars": list(m.emitted_bars),
            "malformed_sent": m.counters["malformed_sent"],
            "malformed_articles": m.malformed_articles,
        }
    )


async def _json_body(request: web.Request) -> dict[str, Any]:
    try:
        body = await request.json() if request.can_read_body else {}
    except ValueError:
        raise web.HTTPBadRequest(text="body must be a JSON object") from None
    if not isinstance(body, dict):
        raise web.HTTPBadRequest(text="body must be a JSON object")
    return body


async def control_faults(request: web.Request) -> web.Response:
    m: Market = request.app[MARKET]
    body = await _json_body(request)
    known = set(Faults().as_dict()) | {"drop_ws"}
    if unknown := set(body) - known:
        raise web.HTTPBadRequest(text=f"unknown faults: {sorted(unknown)}; known: {sorted(known)}")
    for key, value in body.items():
        if key != "drop_ws":
            setattr(m.faults, key, type(getattr(m.faults, key))(value))
    dropped = 0
    if body.get("drop_ws"):
        for conn in list(m.conns):
            dropped += 1
            await conn.ws.close(code=1011, message=b"dropped by fault injection")
    return web.json_response({"faults": m.faults.as_dict(), "dropped": dropped})


async def control_clock(request: web.Request) -> web.Response:
    """{speed, goto (shown ISO time | "end"), end (shown ISO time | "dataset"), end_in_s, skip_closed (true:
    session time only, looping over the dataset's sessions: ``replay.Clock``)} — all optional."""
    m: Market = request.app[MARKET]
    body = await _json_body(request)
    shift = m.clock.shift_ms
    sim = None
    if "goto" in body:
        sim = m.clock.end_ms if body["goto"] == "end" else ds.parse_ms(body["goto"]) - shift
    end = None
    if "end" in body:
        end = ds.END_MS if body["end"] == "dataset" else ds.parse_ms(body["end"]) - shift
    if "end_in_s" in body:  # stop the replay this many dataset seconds after the current (or goto) time
        end = (m.clock.now() if sim is None else sim) + int(float(body["end_in_s"]) * 1000)
    speed = float(body["speed"]) if "speed" in body else None
    if speed is not None and (math.isnan(speed) or speed < 0):
        raise web.HTTPBadRequest(text="speed must be >= 0")
    skip = body.get("skip_closed")
    if skip is not None and not isinstance(skip, bool):
        raise web.HTTPBadRequest(text="skip_closed must be true or false")
    m.set_clock(speed=speed, sim_ms=sim, end_ms=end, skip_closed=skip)
    return web.json_response(status_doc(m))


async def control_reset(request: web.Request) -> web.Response:
    request.app[MARKET].reset()
    return web.json_response({"reset": True})


def make_app(market: Market) -> web.Application:
    app = web.Application()
    app[MARKET] = market
    app.router.add_get("/v2/reference/news", news_handler)
    app.router.add_get("/stocks", stocks_handler)
    app.router.add_get("/_control/status", control_status)
    app.router.add_get("/_control/emitted", control_emitted)
    app.router.add_post("/_control/faults", control_faults)
    app.router.add_post("/_control/clock", control_clock)
    app.router.add_post("/_control/reset", control_reset)
    aggs.add_routes(app, market, gate)

    async def close_sockets(app: web.Application) -> None:
        for conn in list(market.conns):
            await conn.ws.close(code=1001, message=b"server shutdown")

    app.on_shutdown.append(close_sockets)
    return app


def serve(host: str, port: int, market: Market) -> None:
    """Run until SIGTERM/SIGINT (aiohttp handles both and shuts down cleanly)."""
    log.info(
        "market replay on http://%s:%d speed=%g now=%s",
        host,
        port,
        market.clock.speed,
        ds.iso(market.shown(market.clock.now())),
    )
    web.run_app(make_app(market), host=host, port=port, print=None, access_log=None, shutdown_timeout=2)
