"""The event clock of `rtfin lag`: the NYSE session on the wall clock, the replay's clock on loopback."""

from __future__ import annotations

import datetime as dt
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from rtfin_cli.lag.source import SourceProbe, nyse_session
from rtfin_cli.settings import PolygonSettings


def _t(text: str) -> float:
    return dt.datetime.fromisoformat(text).timestamp()


@pytest.mark.parametrize(
    ("now", "is_open", "at"),
    [
        ("2026-12-07T14:30:00+00:00", True, "2026-12-07T14:30:00+00:00"),  # Monday 09:30 New York
        ("2026-12-07T20:59:59+00:00", True, "2026-12-07T14:30:00+00:00"),  # 15:59:59: opened at 09:30
        ("2026-12-07T14:29:59+00:00", False, "2026-12-07T14:30:00+00:00"),  # before the open
        ("2026-12-07T21:00:00+00:00", False, "2026-12-08T14:30:00+00:00"),  # after the close
        ("2026-12-04T21:30:00+00:00", False, "2026-12-07T14:30:00+00:00"),  # Friday evening: Monday
        ("2026-12-06T12:00:00+00:00", False, "2026-12-07T14:30:00+00:00"),  # Sunday
        ("2026-07-06T13:45:00+00:00", True, "2026-07-06T13:30:00+00:00"),  # summer time: 09:30 EDT
    ],
)
def test_nyse_session(now: str, is_open: bool, at: str) -> None:
    """(open, the session's open) while open; (closed, the next open) otherwise."""
    assert nyse_session(_t(now)) == (is_open, _t(at))


def test_a_hosted_api_is_never_asked_for_a_clock() -> None:
    probe = SourceProbe(PolygonSettings(rest_url="https://api.massive.com"))
    assert probe.status_url is None
    clock = probe.read()
    assert not clock.replay and clock.speed == 1.0 and clock.error == ""
    assert abs(clock.now - dt.datetime.now(dt.UTC).timestamp()) < 5


@pytest.fixture()
def replay_status() -> Iterator[tuple[str, dict[str, Any]]]:
    """A loopback HTTP endpoint answering /_control/status with ``doc`` (the test fills it in)."""
    doc: dict[str, Any] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            doc["asked"] = self.path
            body = json.dumps(doc).encode()
            self.send_response(200 if self.path.startswith("/_control/status") else 404)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", doc
    finally:
        server.shutdown()
        server.server_close()


def test_the_replay_clock_is_now_for_data_age(replay_status: tuple[str, dict[str, Any]]) -> None:
    url, doc = replay_status
    doc.update(now="2026-12-09T18:00:00Z", speed=60.0, market_open=False, next_open="2026-12-10T14:30:00Z",
               newest_article="2026-12-09T17:55:00Z", next_article="2026-12-09T17:50:00Z")  # fmt: skip
    clock = SourceProbe(PolygonSettings(rest_url=url)).read(after=_t("2026-12-09T17:45:00+00:00"))
    assert doc["asked"] == "/_control/status?after=2026-12-09T17%3A45%3A00Z"
    assert clock.next_article == _t("2026-12-09T17:50:00+00:00")
    assert clock.replay and clock.speed == 60.0 and clock.error == ""
    assert clock.now == _t("2026-12-09T18:00:00+00:00")
    assert clock.market_open is False and clock.next_open == _t("2026-12-10T14:30:00+00:00")
    assert clock.newest_article == _t("2026-12-09T17:55:00+00:00")


def test_an_unreachable_replay_falls_back_to_the_wall_clock(
    replay_status: tuple[str, dict[str, Any]],
) -> None:
    url, doc = replay_status
    doc.update(speed=60.0)  # no clock in the answer
    clock = SourceProbe(PolygonSettings(rest_url=url)).read()
    assert not clock.replay and "no clock" in clock.error
    closed = SourceProbe(PolygonSettings(rest_url="http://127.0.0.1:9"), timeout=0.5).read()
    assert not closed.replay and "market replay at http://127.0.0.1:9/_control/status" in closed.error
