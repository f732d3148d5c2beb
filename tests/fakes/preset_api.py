"""A strict fake of Preset's token exchange and a workspace's Superset API (the parts rtfin calls), on
127.0.0.1, with expiring access tokens.

Derived from preset-cli (preset-io/backend-sdk): ``src/preset_cli/auth/lib.py`` ``get_access_token``
(``POST {api}/v1/auth/`` with ``{"name": token, "secret": secret}`` answers ``{"payload":
{"access_token": JWT}}``; anything else is refused) and ``src/preset_cli/auth/main.py`` ``Auth.reauth``
(an expired token makes a workspace call answer 401; the client fetches a new token and resends once).
The workspace side follows Superset's REST API as rtfin uses it (``/api/v1/security/csrf_token/``,
``/api/v1/dashboard/<id>``); an expired JWT is answered as flask-jwt-extended does: 401
``{"msg": "Token has expired"}``.

``token_uses`` is how many workspace requests one access token is good for (then it expires).
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

TOKEN, SECRET = "preset-api-token", "preset-api-secret"


class FakePreset(ThreadingHTTPServer):
    def __init__(self, token_uses: int = 1000) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.token_uses = token_uses
        self.tokens: dict[str, int] = {}  # access token -> workspace requests it has served
        self.auth_calls = 0
        self.requests: list[tuple[str, str, int]] = []  # method, path, status answered
        self.dashboards = {"1": {"id": 1, "dashboard_title": "rtfin", "slug": "rtfin"}}
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Handler(BaseHTTPRequestHandler):
    server: FakePreset

    def log_message(self, *args: Any) -> None:
        pass

    def _reply(self, status: int, body: Any) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
        self.server.requests.append((self.command, self.path, status))

    def _body(self) -> Any:
        length = int(self.headers.get("Content-Length") or 0)
        try:
            return json.loads(self.rfile.read(length)) if length else None
        except ValueError:
            return None

    def do_POST(self) -> None:  # noqa: N802
        with self.server.lock:
            body = self._body()
            if self.path != "/v1/auth/":
                return self._workspace()
            self.server.auth_calls += 1
            if not isinstance(body, dict) or set(body) != {"name", "secret"}:
                return self._reply(400, {"errors": [{"message": "name and secret are required"}]})
            if body != {"name": TOKEN, "secret": SECRET}:
                return self._reply(401, {"errors": [{"message": "Invalid credentials"}]})
            jwt = f"jwt-{uuid.uuid4()}"
            self.server.tokens[jwt] = 0
            return self._reply(200, {"payload": {"access_token": jwt}})

    def do_GET(self) -> None:  # noqa: N802
        with self.server.lock:
            self._workspace()

    def _workspace(self) -> None:
        auth = self.headers.get("Authorization", "")
        jwt = auth.removeprefix("Bearer ")
        if not auth.startswith("Bearer ") or jwt not in self.server.tokens:
            return self._reply(401, {"msg": "Missing Authorization Header"})
        if self.server.tokens[jwt] >= self.server.token_uses:
            return self._reply(401, {"msg": "Token has expired"})
        self.server.tokens[jwt] += 1
        if self.command == "GET" and self.path == "/api/v1/security/csrf_token/":
            return self._reply(200, {"result": f"csrf-{jwt}"})
        if self.command == "GET" and self.path.startswith("/api/v1/dashboard/"):
            dash = self.server.dashboards.get(self.path.rsplit("/", 1)[1])
            if dash is None:
                return self._reply(404, {"message": "Not found"})
            return self._reply(200, {"result": dash})
        return self._reply(404, {"message": "Not found"})


@contextmanager
def running(token_uses: int = 1000) -> Iterator[FakePreset]:
    srv = FakePreset(token_uses)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    try:
        yield srv
    finally:
        srv.shutdown()
        srv.server_close()
