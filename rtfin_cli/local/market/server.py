"""The local market replay server: Polygon/Massive news REST + stocks WebSocket over one aiohttp app.

    python -m rtfin_cli.local.market --port 8765 --speed 60

* ``GET /v2/reference/news``: published_utc[.gt|.gte|.lt|.lte], ticker, order, sort, limit (<= 1000),
  ``next_url`` with an opaque cursor, ``apiKey`` or ``Authorization: Bearer``, 429 + Retry-After over
  ``--rate-limit`` requests/s.
* ``/stocks`` WebSocket: status connected -> auth -> auth_success/auth_failed -> subscribe AM.*, A.AAPL, ...
  -> JSON arrays of events.
* ``/_control/*``: status, clock, faults (drop_ws, burst_429, http_5xx, malformed_frames, auth_fail,
  max_connections), emitted (what was served: article ids and bar keys), reset.

The replay clock maps wall time to dataset time (``speed`` dataset seconds per wall second); every
timestamp served is shifted by a whole number of minutes so that the replay start looks like "now".
Only articles and bars whose dataset time has passed are visible.
"""

from __future__ import annotations

import asyncio
import base64
import bisect
import contextlib
import json
import logging
import math
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web

from rtfin_cli.local.market import dataset as ds

log = logging.getLogger("rtfin.market")
FRAME_EVENTS = 1000  # events per WebSocket frame at most
MALFORMED = [
    "this is not json {",
    '{"ev":"AM","sym":"AAPL"}',
    '[{"ev":"AM","sym":"AAPL","s":"soon","e":null,"o":"x"}]',
    '[{"ev":"AM"}]',
    "[1, 2, 3]",
]


def default_start_ms() -> int:
    """Five minutes before the open of the sixth trading day: a week of news backlog, then live trading."""
    return ds.trading_days()[5] - 5 * ds.MINUTE_MS


class Clock:
    """Dataset time as a function of wall time; pausable, re-anchored on every change (never jumps)."""

    def __init__(self, start_ms: int, speed: float, end_ms: int = ds.END_MS) -> None:
        wall = time.time() * 1000
        self.shift_ms = int((wall - start_ms) // ds.MINUTE_MS * ds.MINUTE_MS)
        self.end_ms = end_ms
        self._anchor_sim, self._anchor_wall, self.speed = float(start_ms), wall, speed

    def now(self) -> int:
        sim = self._anchor_sim + (time.time() * 1000 - self._anchor_wall) * self.speed
        return int(min(sim, self.end_ms))

    def set(self, speed: float | None = None, sim_ms: int | None = None, end_ms: int | None = None) -> None:
        self._anchor_sim, self._anchor_wall = (
            float(self.now() if sim_ms is None else sim_ms),
            time.time() * 1000,
        )
        if speed is not None:
            self.speed = speed
        if end_ms is not None:
            self.end_ms = end_ms

    @property
    def finished(self) -> bool:
        return self.now() >= self.end_ms


@dataclass
class Faults:
    burst_429: int = 0
    http_5xx: int = 0
    malformed_frames: int = 0
    malformed_articles: int = 0
    latency_s: float = 0.0  # added to every news response
    auth_fail: bool = False
    max_connections: bool = False
    retry_after: float = 1.0

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(eq=False)
class Conn:
    ws: web.WebSocketResponse
    subs: set[str] = field(default_factory=set)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    sender: asyncio.Task[None] | None = None


class Market:
    """Server state: clock, dataset index, faults, connections and the emitted report."""

    def __init__(
        self, speed: float, start_ms: int | None = None, end_ms: int = ds.END_MS, rate_limit: float = 0.0
    ) -> None:
        self.clock = Clock(default_start_ms() if start_ms is None else start_ms, speed, end_ms)
        self.articles = ds.news()
        self.times = [ds.parse_ms(str(a["published_utc"])) for a in self.articles]
        self.symbols = {t.symbol for t in ds.tickers()}
        self.faults = Faults()
        self.rate_limit = rate_limit
        self._bucket, self._bucket_at = max(1.0, rate_limit), time.monotonic()
        self.conns: set[Conn] = set()
        self.frames: dict[tuple[int, int, frozenset[str]], list[tuple[str, list[str]]]] = {}
        self.reset()

    def reset(self) -> None:
        self.faults = Faults()
        self.emitted_articles: dict[str, None] = {}
        self.emitted_bars: dict[str, None] = {}
        self.malformed_articles: list[str] = []
        self.counters = {
            "requests": 0,
            "rate_limited": 0,
            "bars_sent": 0,
            "frames": 0,
            "malformed_sent": 0,
            "connections": 0,
        }

    # -- time helpers ------------------------------------------------------------------------------
    def shown(self, ms: int) -> int:
        return ms + self.clock.shift_ms

    def article(self, i: int) -> dict[str, Any]:
        art = {k: v for k, v in self.articles[i].items() if k != "label"}
        art["published_utc"] = ds.iso(self.shown(self.times[i]))
        label = str(self.articles[i]["label"])
        art["insights"] = [
            {"ticker": t, "sentiment": label, "sentiment_reasoning": "replay dataset label"}
            for t in art["tickers"]
        ]
        return art

    # -- rate limiting -----------------------------------------------------------------------------
    def take_token(self) -> bool:
        if self.rate_limit <= 0:
            return True
        now = time.monotonic()
        self._bucket = min(
            max(1.0, self.rate_limit), self._bucket + (now - self._bucket_at) * self.rate_limit
        )
        self._bucket_at = now
        if self._bucket >= 1:
            self._bucket -= 1
            return True
        return False


MARKET = web.AppKey("market", Market)


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


async def news_handler(request: web.Request) -> web.Response:
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

    params: dict[str, str] = dict(request.query)
    after: list[Any] | None = None
    if "cursor" in params:
        try:
            state = json.loads(base64.urlsafe_b64decode(params["cursor"].encode()))
            params, after = state["q"], state["after"]
        except (ValueError, KeyError, TypeError):
            return _error(400, "invalid cursor")
    try:
        limit = max(1, min(1000, int(params.get("limit", "10"))))
    except ValueError:
        return _error(400, "limit must be an integer between 1 and 1000")
    order = params.get("order", "desc")
    if order not in ("asc", "desc") or params.get("sort", "published_utc") != "published_utc":
        return _error(400, "order must be asc|desc and sort must be published_utc")

    shift = m.clock.shift_ms
    lo, hi = 0, bisect.bisect_right(m.times, m.clock.now())  # visible: dataset time has passed
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
    idx = range(lo, hi) if order == "asc" else range(hi - 1, lo - 1, -1)
    ticker = params.get("ticker")
    page: list[int] = []
    more = False
    for i in idx:
        if ticker and ticker not in m.articles[i]["tickers"]:
            continue
        pos = [m.times[i], m.articles[i]["id"]]
        if after is not None and (pos <= after if order == "asc" else pos >= after):
            continue
        if len(page) == limit:
            more = True
            break
        page.append(i)
    results = [m.article(i) for i in page]
    for art in results:
        m.emitted_articles[art["id"]] = None
        if m.faults.malformed_articles > 0:  # served once without a usable timestamp
            m.faults.malformed_articles -= 1
            art["published_utc"] = "yesterday-ish"
            m.malformed_articles.append(art["id"])
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


# -- WebSocket --------------------------------------------------------------------------------------
async def _send(conn: Conn, payload: str) -> None:
    async with conn.lock:
        await conn.ws.send_str(payload)


def _status(status: str, message: str) -> str:
    return json.dumps([{"ev": "status", "status": status, "message": message}])


async def stocks_handler(request: web.Request) -> web.WebSocketResponse:
    m: Market = request.app[MARKET]
    ws = web.WebSocketResponse(max_msg_size=1 << 20, compress=False)  # localhost: CPU matters, not bytes
    await ws.prepare(request)
    conn = Conn(ws)
    m.conns.add(conn)
    m.counters["connections"] += 1
    authed = False
    try:
        await _send(conn, _status("connected", "Connected Successfully"))
        async for msg in ws:
            if msg.type != WSMsgType.TEXT:
                continue
            try:
                req = json.loads(msg.data)
                action, params = req.get("action"), str(req.get("params", ""))
            except (ValueError, AttributeError):
                await _send(conn, _status("error", "invalid JSON message"))
                continue
            if action == "auth":
                if m.faults.auth_fail or not params:
                    await _send(conn, _status("auth_failed", "authentication failed"))
                    await ws.close()
                    break
                if m.faults.max_connections:
                    await _send(
                        conn, _status("max_connections", "Maximum number of websocket connections exceeded.")
                    )
                    await ws.close()
                    break
                authed = True
                await _send(conn, _status("auth_success", "authenticated"))
            elif action in ("subscribe", "unsubscribe"):
                if not authed:
                    await _send(conn, _status("error", "not authorized"))
                    continue
                for item in filter(None, (p.strip() for p in params.split(","))):
                    ev, _, sym = item.partition(".")
                    if ev not in ("AM", "A") or not sym:
                        await _send(conn, _status("error", f"invalid subscription: {item}"))
                        continue
                    (conn.subs.add if action == "subscribe" else conn.subs.discard)(item)
                    verb = "subscribed to" if action == "subscribe" else "unsubscribed from"
                    await _send(conn, _status("success", f"{verb}: {item}"))
                if conn.subs and conn.sender is None:
                    conn.sender = asyncio.create_task(_stream(m, conn))
            else:
                await _send(conn, _status("error", f"unknown action: {action}"))
    finally:
        m.conns.discard(conn)
        if conn.sender is not None:
            conn.sender.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await conn.sender
    return ws


def _wanted(subs: set[str], ev: str, sym: str) -> bool:
    return f"{ev}.*" in subs or f"{ev}.{sym}" in subs


async def _stream(m: Market, conn: Conn) -> None:
    """Send every bar that ends after the subscription, as the replay clock passes its end."""
    step = 1000 if any(s.startswith("A.") for s in conn.subs) else ds.MINUTE_MS
    t = m.clock.now() // step * step  # the next bar to send starts at t
    while not conn.ws.closed:
        now = m.clock.now()
        while t + step <= now and not conn.ws.closed:
            if step == ds.MINUTE_MS or t % ds.MINUTE_MS == 0:
                nxt = ds.next_session_minute(t)
                if nxt is None:
                    t = ds.END_MS
                    break
                if nxt > t:
                    t = nxt
                    continue
            try:
                await _emit(m, conn, t, step)
            except ConnectionError:  # the client went away mid-send
                return
            t += step
        if m.clock.speed <= 0 or t >= ds.END_MS:
            wait = 0.2
        else:
            wait = min(0.2, max(0.001, (t + step - m.clock.now()) / m.clock.speed / 1000))
        await asyncio.sleep(wait)


def _frames(m: Market, subs: set[str], t: int, step: int) -> list[tuple[str, list[str]]]:
    """The frames (JSON text, emitted keys) for the bars ending at t + step; cached, as every connection
    with the same subscriptions gets the same frames."""
    cache_key = (t, step, frozenset(subs))
    frames = m.frames.get(cache_key)
    if frames is not None:
        return frames
    frames = []
    pos = ds.session_index(t - t % ds.MINUTE_MS)
    if pos is not None:
        events: list[dict[str, Any]] = []
        for bar in ds.day_bars(pos[0])[pos[1]]:
            sym = bar["sym"]
            if step == 1000 and _wanted(subs, "A", sym):
                events.append(ds.second_aggs(bar)[(t % ds.MINUTE_MS) // 1000])
            if (t + step) % ds.MINUTE_MS == 0 and _wanted(subs, "AM", sym):
                events.append(bar)
        shift = m.clock.shift_ms
        for start in range(0, len(events), FRAME_EVENTS):
            chunk = [
                {**e, "s": e["s"] + shift, "e": e["e"] + shift} for e in events[start : start + FRAME_EVENTS]
            ]
            frames.append(
                (json.dumps(chunk, separators=(",", ":")), [f"{e['ev']}|{e['sym']}|{e['s']}" for e in chunk])
            )
    if len(m.frames) > 20_000:
        m.frames.clear()
    m.frames[cache_key] = frames
    return frames


async def _emit(m: Market, conn: Conn, t: int, step: int) -> None:
    for text, keys in _frames(m, conn.subs, t, step):
        if m.faults.malformed_frames > 0:
            m.faults.malformed_frames -= 1
            await _send(conn, MALFORMED[m.counters["malformed_sent"] % len(MALFORMED)])
            m.counters["malformed_sent"] += 1
        await _send(conn, text)
        m.counters["frames"] += 1
        m.counters["bars_sent"] += len(keys)
        m.emitted_bars.update(dict.fromkeys(keys))


# -- control ----------------------------------------------------------------------------------------
def status_doc(m: Market) -> dict[str, Any]:
    now = m.clock.now()
    return {
        "now": ds.iso(m.shown(now)),
        "dataset_now": ds.iso(now),
        "speed": m.clock.speed,
        "finished": m.clock.finished,
        "end": ds.iso(m.shown(m.clock.end_ms)),
        "shift_ms": m.clock.shift_ms,
        "articles_visible": bisect.bisect_right(m.times, now),
        "articles_total": len(m.times),
        "connections": len(m.conns),
        "subscriptions": sorted({s for c in m.conns for s in c.subs}),
        "faults": m.faults.as_dict(),
        "counters": dict(m.counters),
        "rate_limit": m.rate_limit,
        "emitted": {"articles": len(m.emitted_articles), "bars": len(m.emitted_bars)},
    }


async def control_status(request: web.Request) -> web.Response:
    return web.json_response(status_doc(request.app[MARKET]))


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
    """{speed, goto (shown ISO time | "end"), end (shown ISO time | "dataset"), end_in_s} — all optional."""
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
    m.clock.set(speed=speed, sim_ms=sim, end_ms=end)
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
