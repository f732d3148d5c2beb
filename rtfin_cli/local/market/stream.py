"""The replay server's ``/stocks`` WebSocket: Polygon/Massive's status/auth/subscribe protocol, then bars.

Each connection subscribes to ``AM.*``/``AM.SYM`` (minute bars) or ``A.*``/``A.SYM`` (second bars); a
sender task streams every bar that ends after the subscription as the replay clock passes its end.
Frames are cached per (time, step, subscriptions): every connection with the same subscriptions gets
the same frames.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

from aiohttp import WSMsgType, web

from rtfin_cli.local.market import dataset as ds
from rtfin_cli.local.market.replay import MARKET, Conn, Market

FRAME_EVENTS = 1000  # events per WebSocket frame at most
MALFORMED = [
    "this is not json {",
    '{"ev":"AM","sym":"AAPL"}',
    '[{"ev":"AM","sym":"AAPL","s":"soon","e":null,"o":"x"}]',
    '[{"ev":"AM"}]',
    "[1, 2, 3]",
]


async def _send(conn: Conn, payload: str) -> None:
    async with conn.lock:
        await conn.ws.send_str(payload)


def _status(status: str, message: str) -> str:
    return json.dumps([{"ev": "status", "status": status, "message": message}])


async def _auth(m: Market, conn: Conn, params: str) -> bool:
    """Answer an auth message; False (after closing the socket) when the client is refused."""
    if m.faults.auth_fail or not params:
        await _send(conn, _status("auth_failed", "authentication failed"))
    elif m.faults.max_connections:
        await _send(conn, _status("max_connections", "Maximum number of websocket connections exceeded."))
    else:
        await _send(conn, _status("auth_success", "authenticated"))
        return True
    await conn.ws.close()
    return False


async def _subscribe(m: Market, conn: Conn, action: str, params: str) -> None:
    """Add or remove subscriptions (``AM.*``, ``A.AAPL``, ...); start the sender with the first one."""
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


async def _converse(m: Market, conn: Conn) -> None:
    """Read the client's messages until it leaves or is refused."""
    authed = False
    async for msg in conn.ws:
        if msg.type != WSMsgType.TEXT:
            continue
        try:
            req = json.loads(msg.data)
            action, params = req.get("action"), str(req.get("params", ""))
        except (ValueError, AttributeError):
            await _send(conn, _status("error", "invalid JSON message"))
            continue
        if action == "auth":
            if not await _auth(m, conn, params):
                return
            authed = True
        elif action in ("subscribe", "unsubscribe"):
            if authed:
                await _subscribe(m, conn, action, params)
            else:
                await _send(conn, _status("error", "not authorized"))
        else:
            await _send(conn, _status("error", f"unknown action: {action}"))


async def stocks_handler(request: web.Request) -> web.WebSocketResponse:
    """``/stocks``: greet, then converse; the sender task ends with the connection."""
    m: Market = request.app[MARKET]
    ws = web.WebSocketResponse(max_msg_size=1 << 20, compress=False)  # localhost: CPU matters, not bytes
    await ws.prepare(request)
    conn = Conn(ws, transport=request.transport)
    m.conns.add(conn)
    m.counters["connections"] += 1
    try:
        await _send(conn, _status("connected", "Connected Successfully"))
        await _converse(m, conn)
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
        now, loop = m.clock.now(), m.clock.skip_closed  # a looping clock (skip_closed) never ends
        while t + step <= now and not conn.ws.closed:
            if step == ds.MINUTE_MS or t % ds.MINUTE_MS == 0:
                nxt = ds.next_session_minute(t, loop)
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
        if m.clock.speed <= 0 or (t >= ds.END_MS and not loop):
            wait = 0.2
        else:
            wait = min(0.2, max(0.001, (t + step - m.clock.now()) / m.clock.speed / 1000))
        await m.nap(wait)  # woken at once by a clock change


def _frames(m: Market, subs: set[str], t: int, step: int) -> list[tuple[str, list[str]]]:
    """The frames (JSON text, emitted keys) for the bars ending at t + step; cached, as every connection
    with the same subscriptions gets the same frames."""
    cache_key = (t, step, frozenset(subs))
    frames = m.frames.get(cache_key)
    if frames is not None:
        return frames
    frames = []
    loop = m.clock.skip_closed
    pos = ds.session_index(t - t % ds.MINUTE_MS, loop)
    if pos is not None:
        events: list[dict[str, Any]] = []
        for bar in ds.day_bars(pos[0])[pos[1]]:
            sym = bar["sym"]
            if step == 1000 and _wanted(subs, "A", sym):
                events.append(ds.second_aggs(bar)[(t % ds.MINUTE_MS) // 1000])
            if (t + step) % ds.MINUTE_MS == 0 and _wanted(subs, "AM", sym):
                events.append(bar)
        shift = m.clock.shift_ms + (ds.lap_split(t)[0] * ds.LAP_MS if loop else 0)  # a later lap's times
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
