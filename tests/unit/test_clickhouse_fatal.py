"""The endpoint stops serving and exits non-zero once its engine reports a fatal state.

A fatal engine state (``Code: 236 ... shutting down due to a fatal error``) cannot be caused on purpose in
a healthy chDB, so the engine here is a stand-in that answers every query so; the HTTP server, handler
and the process's serve loop are the real ones.
"""

from __future__ import annotations

import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from rtfin_cli.local.clickhouse.errors import CHError, from_engine, is_fatal

pytestmark = pytest.mark.unit

FATAL_TEXT = (
    "Code: 236. DB::Exception: The server is shutting down due to a fatal error. (ABORTED) (version 26.9)"
)


class FatalEngine:
    """Answers every query with the fatal error; records whether it was closed."""

    version = "26.9.2.1"
    timezone = "UTC"

    def __init__(self) -> None:
        self.closed = False

    @contextmanager
    def connection(self, *_args: Any, **_kw: Any) -> Iterator[Any]:
        raise from_engine(RuntimeError(FATAL_TEXT))
        yield  # pragma: no cover

    def close(self) -> None:
        self.closed = True


def test_is_fatal_only_for_the_fatal_abort() -> None:
    assert is_fatal(from_engine(RuntimeError(FATAL_TEXT)))
    assert not is_fatal(CHError("ABORTED", "Query was aborted", code=236))
    assert not is_fatal(from_engine(RuntimeError("Code: 60. DB::Exception: Unknown table. (UNKNOWN_TABLE)")))


def test_fatal_answer_stops_the_server_with_a_non_zero_exit() -> None:
    from rtfin_cli.local.clickhouse.__main__ import FATAL_EXIT, _serve
    from rtfin_cli.local.clickhouse.protocol import make_server

    engine = FatalEngine()
    server = make_server(("127.0.0.1", 0), engine, "default", "pw")  # type: ignore[arg-type]
    codes: list[int] = []
    serving = threading.Thread(target=lambda: codes.append(_serve(server, engine)), daemon=True)  # type: ignore[arg-type]
    serving.start()
    req = urllib.request.Request(f"http://127.0.0.1:{server.server_address[1]}/?user=default&password=pw",
                                 data=b"SELECT 1", method="POST")  # fmt: skip
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(req, timeout=10)  # noqa: S310 - local test server
    assert err.value.code == 500 and err.value.headers["X-ClickHouse-Exception-Code"] == "236"
    serving.join(timeout=15)
    assert codes == [FATAL_EXIT] and FATAL_EXIT != 0
    assert not engine.closed  # closing an engine in a fatal state can hang; the process exits instead
    assert server.fatal is not None and "fatal" in server.fatal
