"""A local stand-in for Preset: the manager API's token exchange (POST /v1/auth/ with an API token and
secret → JWT) and a workspace whose Superset API is proxied to a real local Superset."""

from __future__ import annotations

import json
import secrets
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx

HOP = {
    "host",
    "content-length",
    "connection",
    "authorization",
    "cookie",
    "accept-encoding",
    "transfer-encoding",
}


class PresetServer:
    def __init__(self, superset_url: str, username: str, password: str, token: str, secret: str) -> None:
        self.token, self.secret = token, secret
        self.issued: set[str] = set()
        self.calls: list[tuple[str, str]] = []
        self.upstream = httpx.Client(base_url=superset_url, timeout=60)
        login = {"username": username, "password": password, "provider": "db"}
        resp = self.upstream.post("/api/v1/security/login", json=login)
        resp.raise_for_status()
        self.upstream.headers["Authorization"] = f"Bearer {resp.json()['access_token']}"
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> PresetServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.upstream.close()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # quiet
                pass

            def _reply(self, status: int, body: bytes, ctype: str = "application/json") -> None:
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _body(self) -> bytes:
                return self.rfile.read(int(self.headers.get("Content-Length") or 0))

            def _handle(self) -> None:
                server.calls.append((self.command, self.path))
                body = self._body()
                if self.path.rstrip("/") == "/v1/auth":  # Preset manager API: token exchange
                    try:
                        doc = json.loads(body or b"{}")
                    except ValueError:
                        doc = {}
                    if (
                        self.command == "POST"
                        and doc.get("name") == server.token
                        and doc.get("secret") == server.secret
                    ):
                        jwt = secrets.token_urlsafe(32)
                        server.issued.add(jwt)
                        self._reply(200, json.dumps({"payload": {"access_token": jwt}}).encode())
                    else:
                        self._reply(401, b'{"message": "Invalid API token or secret"}')
                    return
                bearer = (self.headers.get("Authorization") or "").removeprefix("Bearer ").strip()
                if bearer not in server.issued:
                    self._reply(401, b'{"msg": "Not authenticated"}')
                    return
                headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP}
                resp = server.upstream.request(self.command, self.path, content=body, headers=headers)
                self._reply(
                    resp.status_code, resp.content, resp.headers.get("content-type", "application/json")
                )

            do_GET = do_POST = do_PUT = do_DELETE = _handle

        return Handler
