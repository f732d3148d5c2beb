"""Polygon/Massive stocks WebSocket client: auth, subscribe, reconnect, frames to a callback.

Protocol: the server greets with ``[{"ev":"status","status":"connected"}]``; the client sends
``{"action":"auth","params":KEY}``; after ``auth_success`` it subscribes (``AM.*``, ``A.AAPL``, ...). Every
frame is a JSON array mixing status and aggregate events. ``auth_failed`` and ``max_connections`` are final;
any other end of a connection (a close frame such as 1001, a TCP reset seen as 1006, ``slow_consumer`` or
``force_disconnect`` before a close) reconnects, re-authenticates and re-subscribes under
``ReconnectPolicy``: at once after a connection that had subscribed, with capped backoff after attempts
that failed. ``connection`` numbers the subscribed connections, so a consumer can tell what came before
and after a gap.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable
from typing import Any

from rtfin_cli.errors import AuthError, ServiceUnavailable
from rtfin_cli.sources.news import KEY_HINT, api_key
from rtfin_cli.sources.reconnect import ReconnectPolicy
from rtfin_cli.sources.records import StatusEvent, decode_frame, loads

log = logging.getLogger("rtfin.sources.stocks")
EVENTS = ("AM", "A")
HANDSHAKE_TIMEOUT_S = 10.0

# on_frame(events, raw): a data frame's events (``records.Events`` when every event type-checked, else the
# decoded JSON, normally a list) and its raw text
FrameHandler = Callable[[Any, str], None]


def subscriptions(tickers: list[str] | None, events: list[str]) -> list[str]:
    """``AM.AAPL,A.AAPL`` style channel names; ``None`` tickers means every ticker (``AM.*``)."""
    bad = [e for e in events if e not in EVENTS]
    if bad or not events:
        from rtfin_cli.errors import UsageError

        raise UsageError(f"unknown event type(s) {', '.join(bad) or '(none)'}", "Use --events AM, A or AM,A.")
    return [f"{ev}.{t}" for ev in events for t in (tickers or ["*"])]


class StocksStream:
    """Keep one authenticated, subscribed connection open until ``stop`` is set."""

    def __init__(
        self,
        url: str,
        key: str,
        channels: list[str],
        on_frame: FrameHandler,
        max_retries: int = 8,
        timeout_s: float = 30.0,
    ) -> None:
        self.url, self.key, self.channels, self.on_frame = url, key, channels, on_frame
        self.timeout_s = timeout_s
        self.policy = ReconnectPolicy(max_failures=max_retries)
        self.connected = False
        self.on_subscribed: Callable[[int], None] | None = (
            None  # called with ``connection`` on each subscribe
        )

    @property
    def connection(self) -> int:
        """The number of the current (last) subscribed connection, from 1."""
        return self.policy.connects

    @property
    def reconnects(self) -> int:
        return self.policy.reconnects

    @classmethod
    def from_settings(cls, polygon: Any, channels: list[str], on_frame: FrameHandler) -> StocksStream:
        return cls(
            polygon.ws_url,
            api_key(polygon, polygon.ws_url),
            channels,
            on_frame,
            polygon.max_retries,
            polygon.timeout_s,
        )

    async def run(self, stop: asyncio.Event) -> None:
        """Stream until stop; raises AuthError on auth_failed/max_connections, ServiceUnavailable when a
        stream that never subscribed fails ``max_retries`` consecutive attempts. A stream that has
        subscribed once keeps reconnecting for as long as it runs."""
        from websockets.exceptions import InvalidHandshake, InvalidURI, WebSocketException

        while not stop.is_set():
            self.connected = False
            try:
                await self._session(stop)
            except (TimeoutError, OSError, WebSocketException, InvalidHandshake) as exc:
                if isinstance(exc, InvalidURI):
                    raise ServiceUnavailable(f"invalid polygon.ws_url {self.url!r}: {exc}") from None
                reason = f"{type(exc).__name__}: {exc}"
            else:
                reason = "server closed the connection"
            streamed, self.connected = self.connected, False
            if stop.is_set():
                break
            delay = self.policy.lost(streamed)
            if delay is None:
                raise ServiceUnavailable(
                    f"stocks WebSocket {self.url} unreachable after {self.policy.failures} attempts ({reason})",
                    "Check polygon.ws_url and the service status (`rtfin local market status` locally).",
                )
            log.warning("stocks WebSocket disconnected (%s); reconnecting in %.1fs", reason, delay)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), delay)

    async def _session(self, stop: asyncio.Event) -> None:
        """One connection, until the server ends it (raises) or ``stop`` is set; ``connected`` once it has
        subscribed."""
        import websockets

        async with websockets.connect(
            self.url,
            max_size=None,
            open_timeout=self.timeout_s,
            ping_interval=20,
            ping_timeout=self.timeout_s,
        ) as ws:
            await self._expect(ws, "connected")
            await ws.send(json.dumps({"action": "auth", "params": self.key}))
            await self._expect(ws, "auth_success")
            await ws.send(json.dumps({"action": "subscribe", "params": ",".join(self.channels)}))
            self.connected = True
            self.policy.subscribed()
            log.info("stocks WebSocket %s subscribed to %s", self.url, ",".join(self.channels))
            if self.on_subscribed is not None:
                self.on_subscribed(self.connection)
            recv = asyncio.ensure_future(ws.recv())
            stopped = asyncio.ensure_future(stop.wait())
            try:
                while True:
                    done, _ = await asyncio.wait({recv, stopped}, return_when=asyncio.FIRST_COMPLETED)
                    if stopped in done:
                        return
                    raw = recv.result()  # raises ConnectionClosed when the server hangs up
                    text = raw if isinstance(raw, str) else raw.decode("utf-8", "replace")
                    self._handle(text)
                    recv = asyncio.ensure_future(ws.recv())
            finally:
                for fut in (recv, stopped):
                    fut.cancel()

    def _handle(self, text: str) -> None:
        events = decode_frame(text)  # the usual frame: typed and checked in one pass
        if events is not None:
            for ev in events:
                if type(ev) is StatusEvent:
                    self._status({"status": ev.status, "message": ev.message})
            self.on_frame(events, text)
            return
        try:
            data = loads(text)
        except ValueError:
            data = None
        if isinstance(data, list):
            for ev in data:
                if isinstance(ev, dict) and ev.get("ev") == "status":
                    self._status(ev)
        self.on_frame(data, text)

    def _status(self, ev: dict[str, Any]) -> None:
        status = ev.get("status")
        if status in ("auth_failed", "max_connections"):
            raise AuthError(
                f"stocks WebSocket {self.url}: {status} ({ev.get('message', '')})",
                KEY_HINT
                if status == "auth_failed"
                else "Another connection uses this key; close it or raise the plan's connection limit.",
            )
        if status not in ("connected", "auth_success", "success"):  # error, slow_consumer, force_disconnect
            log.warning("stocks WebSocket status %s: %s", status, ev.get("message"))

    async def _expect(self, ws: Any, wanted: str) -> None:
        """Read status frames until ``wanted`` arrives (auth failures raise AuthError)."""
        while True:
            raw = await asyncio.wait_for(ws.recv(), HANDSHAKE_TIMEOUT_S)
            try:
                events = json.loads(raw)
            except ValueError:
                continue
            for ev in events if isinstance(events, list) else []:
                if isinstance(ev, dict) and ev.get("ev") == "status":
                    self._status(ev)
                    if ev.get("status") == wanted:
                        return
