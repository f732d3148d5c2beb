"""The endpoint's HTTP server: one thread per client connection in front of one Engine; counts requests in
flight (a graceful stop drains them) and stops serving once the engine reports a fatal state, so the process
exits non-zero and its supervisor restarts it."""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

from rtfin_cli.local.clickhouse.confine import Confinement
from rtfin_cli.local.clickhouse.errors import CHError

if TYPE_CHECKING:
    from rtfin_cli.local.clickhouse.engine import Engine

log = logging.getLogger("rtfin.clickhouse")
# How a client hanging up (or not reading for the handler's timeout) shows on its socket.
HANGUP = (ConnectionError, TimeoutError)


def how_hung_up(exc: BaseException) -> str:
    """A hang-up in words (never the exception's class name: the stack's status reads `...Error` lines
    of this log as errors, and a client hanging up is none)."""
    from rtfin_cli.local.clickhouse.codecs import BodyEndedEarly

    if isinstance(exc, BodyEndedEarly):
        return "request body cut short"
    if isinstance(exc, TimeoutError):
        return "stopped reading"
    if isinstance(exc, BrokenPipeError):
        return "broken pipe"
    if isinstance(exc, ConnectionResetError):
        return "connection reset"
    return "connection closed"


class Server(ThreadingHTTPServer):
    """A threaded HTTP server (one thread per client connection) in front of one Engine."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64

    def __init__(
        self,
        address: tuple[str, int],
        handler: type[BaseHTTPRequestHandler],
        engine: Engine,
        user: str,
        password: str,
        max_body_bytes: int = 4 << 30,
        max_query_bytes: int = 16 << 20,
        confinement: Confinement | None = None,
    ) -> None:
        self.engine = engine
        self.confinement = confinement or Confinement()  # default: no file access, no network
        self.user = user
        self.password = password
        self.max_body_bytes = max_body_bytes
        self.max_query_bytes = max_query_bytes
        self._active = 0
        self._idle = threading.Condition()
        self.fatal: str | None = None  # set once the engine reported a fatal state: the process must exit
        super().__init__(address, handler)

    def engine_failed(self, exc: CHError) -> None:
        """The engine reported a fatal state: stop serving, so the process exits non-zero and its
        supervisor (the stack's watchdog) restarts it; every later query would fail the same way."""
        with self._idle:
            if self.fatal is not None:
                return
            self.fatal = exc.message
        log.critical(
            "engine reports a fatal state (code %s: %s); shutting down for a restart", exc.code, exc.message
        )
        threading.Thread(target=self.shutdown, daemon=True, name="fatal-shutdown").start()

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A connection that failed outside a query: one line (a client hanging up is no error)."""
        exc = sys.exc_info()[1]
        if isinstance(exc, HANGUP):
            log.info("client %s:%s hung up (%s)", *client_address[:2], how_hung_up(exc))
        else:
            log.exception("connection from %s:%s: internal failure", *client_address[:2])

    @contextmanager
    def active(self) -> Iterator[None]:
        """Count a request in flight (``drain`` waits for them at shutdown)."""
        with self._idle:
            self._active += 1
        try:
            yield
        finally:
            with self._idle:
                self._active -= 1
                self._idle.notify_all()

    def drain(self, timeout: float) -> bool:
        """Wait until no request is in flight; False if some still run after ``timeout``."""
        with self._idle:
            return self._idle.wait_for(lambda: self._active == 0, timeout)
