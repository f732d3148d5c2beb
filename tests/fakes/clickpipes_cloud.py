"""A strict fake of the ClickHouse Cloud API's ClickPipes and service-state endpoints, on 127.0.0.1.

Derived from the official Terraform provider, ClickHouse/terraform-provider-clickhouse:
- ``pkg/internal/api/clickpipe.go``: the ClickPipes paths (``/v1/organizations/{org}/services/{svc}/
  clickpipes``: GET list, POST, GET/PATCH/DELETE ``/{id}``, PATCH ``/{id}/state``, PATCH ``/{id}/scaling``),
  every response ``{"result": ...}``.
- ``pkg/internal/api/errors.go``: an idle service makes every ClickPipes call fail with 424 whose body says
  ``Current state: idle`` (a stopped service: ``Current state: stopped``).
- ``pkg/internal/api/service.go``: PATCH ``/services/{svc}/state`` ``{"command": "awake"}`` wakes it; GET
  ``/services/{svc}`` reports ``result.state`` (idle → awaking → running).
- ``pkg/internal/api/common.go``: HTTP basic auth with the key id and secret; error bodies are
  ``{"status", "requestId", "error"}`` (the error text prefixed with its code, e.g. ``BAD_REQUEST: ...``).
- Request bodies are checked by ``tests.fakes.clickpipes_schema`` (models, enums, per-type auth).
Credentials are never returned (the provider keeps them from the plan, never from a read).

``key_ttl_requests`` models a revoked key: after that many requests every call answers 401.
``throttle`` answers that many next requests 429 with ``X-RateLimit-Reset`` (seconds; the provider's
``doRequest`` waits that plus one second and retries).
"""

from __future__ import annotations

import base64
import copy
import json
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.fakes import clickpipes_schema as schema

ORG, SVC, KEY, SECRET = "org-1", "svc-1", "key-id", "key-secret-value"
CODES = {400: "BAD_REQUEST", 401: "UNAUTHENTICATED", 404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED",
         424: "FAILED_DEPENDENCY", 429: "TOO_MANY_REQUESTS"}  # fmt: skip


class FakeCloud(ThreadingHTTPServer):
    """State: the service (``service_state``), the pipes, and every request received (secrets included)."""

    def __init__(self, service_state: str = "running", awaking_polls: int = 1) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.service_state = service_state
        self.awaking_polls = awaking_polls  # GETs of the service answered "awaking" before "running"
        self.pipes: dict[str, dict[str, Any]] = {}
        self.secrets: dict[str, dict[str, Any]] = {}  # pipe id -> the credentials last written
        self.requests: list[tuple[str, str, Any]] = []
        self.key_ttl_requests: int | None = None
        self.throttle = 0
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def calls(self, method: str) -> list[tuple[str, str, Any]]:
        return [r for r in self.requests if r[0] == method]


class _Handler(BaseHTTPRequestHandler):
    server: FakeCloud

    def log_message(self, *args: Any) -> None:
        pass

    def _reply(
        self, status: int, result: Any = None, error: str = "", headers: dict[str, str] | None = None
    ) -> None:
        body: dict[str, Any] = {"status": status, "requestId": str(uuid.uuid4())}
        if status < 400:
            body["result"] = result
        else:
            body["error"] = f"{CODES.get(status, 'ERROR')}: {error}"
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)

    def _authorized(self) -> bool:
        want = "Basic " + base64.b64encode(f"{KEY}:{SECRET}".encode()).decode()
        ttl = self.server.key_ttl_requests
        expired = ttl is not None and len(self.server.requests) > ttl
        return self.headers.get("Authorization") == want and not expired

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            return self._reply(400, error="body is not JSON")
        with self.server.lock:
            self.server.requests.append((self.command, self.path, body))
            if not self._authorized():
                return self._reply(401, error="invalid API key")
            if self.server.throttle > 0:
                self.server.throttle -= 1
                return self._reply(429, error="rate limit exceeded", headers={"X-RateLimit-Reset": "0"})
            svc = f"/v1/organizations/{ORG}/services/{SVC}"
            if self.path in (svc, svc + "/state"):
                return self._service(body)
            if not self.path.startswith(svc + "/clickpipes"):
                return self._reply(404, error="not found")
            if self.server.service_state != "running":
                state = self.server.service_state
                return self._reply(424, error=f"Service is not running. Current state: {state}")
            rest = [p for p in self.path[len(svc + "/clickpipes") :].split("/") if p]
            return self._pipes(rest, body)

    def _service(self, body: Any) -> None:
        srv = self.server
        if self.command == "GET":
            if srv.service_state == "awaking":
                srv.awaking_polls -= 1
                if srv.awaking_polls < 0:
                    srv.service_state = "running"
            return self._reply(200, {"id": SVC, "name": "rtfin", "state": srv.service_state})
        if self.command != "PATCH" or not self.path.endswith("/state"):
            return self._reply(405, error="method not allowed")
        problem = schema.unknown_field(body, {"command"}, "body")
        if problem or body.get("command") not in ("start", "stop", "awake"):
            return self._reply(400, error=problem or "body.command: must be one of start, stop, awake")
        if body["command"] == "awake" and srv.service_state == "idle":
            srv.service_state = "awaking"
        return self._reply(200, {"id": SVC, "state": srv.service_state})

    def _view(self, pid: str) -> dict[str, Any]:
        return copy.deepcopy(self.server.pipes[pid])

    def _pipes(self, rest: list[str], body: Any) -> None:
        pipes = self.server.pipes
        if not rest:
            if self.command == "GET":
                return self._reply(200, [self._view(p) for p in pipes])
            if self.command == "POST":
                return self._create(body)
            return self._reply(405, error="method not allowed")
        pid = rest[0]
        if pid not in pipes:
            return self._reply(404, error=f"ClickPipe {pid} not found")
        if self.command == "GET" and len(rest) == 1:
            return self._reply(200, self._view(pid))
        if self.command == "DELETE" and len(rest) == 1:
            del pipes[pid]
            return self._reply(200, None)
        if self.command == "PATCH" and len(rest) == 1:
            return self._update(pid, body)
        if self.command == "PATCH" and rest[1:] == ["state"]:
            return self._state(pid, body)
        if self.command == "PATCH" and rest[1:] == ["scaling"]:
            problem = schema.unknown_field(body, schema.SCALING, "body")
            replicas = (body or {}).get("replicas", 1)
            if problem or not isinstance(replicas, int) or not 1 <= replicas <= schema.MAX_REPLICAS:
                return self._reply(400, error=problem or "body.replicas: must be an integer from 1 to 10")
            pipes[pid]["scaling"] = {**pipes[pid].get("scaling", {}), **body}
            return self._reply(200, self._view(pid))
        return self._reply(405, error="method not allowed")

    def _create(self, body: Any) -> None:
        problem = schema.create_body(body)
        if problem:
            return self._reply(400, error=problem)
        if any(p["name"] == body["name"] for p in self.server.pipes.values()):
            return self._reply(400, error=f"a ClickPipe named {body['name']} already exists")
        pid = str(uuid.uuid4())
        pipe = copy.deepcopy(body)
        kafka = pipe["source"]["kafka"]
        self.server.secrets[pid] = kafka.pop("credentials", None) or {}
        kafka.setdefault("type", "kafka")
        kafka.setdefault("authentication", "PLAIN")
        kafka.setdefault("consumerGroup", f"clickpipes-{pid}")
        pipe.setdefault("scaling", {"replicas": 1})
        pipe.update(id=pid, state="Running")  # created running; the POST answer says Unknown
        self.server.pipes[pid] = pipe
        return self._reply(200, {**self._view(pid), "state": "Unknown"})

    def _update(self, pid: str, body: Any) -> None:
        pipe = self.server.pipes[pid]
        problem = schema.update_body(body, pipe["source"]["kafka"])
        if problem:
            return self._reply(400, error=problem)
        if "name" in body:
            pipe["name"] = body["name"]
        kafka = dict((body.get("source") or {}).get("kafka") or {})
        if "credentials" in kafka:
            self.server.secrets[pid] = kafka.pop("credentials")
        pipe["source"]["kafka"].update(kafka)
        if "destination" in body:
            pipe["destination"]["columns"] = body["destination"]["columns"]
        if "fieldMappings" in body:
            pipe["fieldMappings"] = body["fieldMappings"]
        return self._reply(200, self._view(pid))

    def _state(self, pid: str, body: Any) -> None:
        problem = schema.unknown_field(body, {"command"}, "body") or schema.enum_field(
            body, "command", schema.STATE_COMMANDS, "body"
        )
        if problem or "command" not in body:
            return self._reply(400, error=problem or "body.command: required")
        new = {"start": "Running", "stop": "Stopped"}.get(body["command"])
        if new:
            self.server.pipes[pid]["state"] = new
        return self._reply(200, self._view(pid))

    do_GET = do_POST = do_PATCH = do_DELETE = _handle  # noqa: N815


@contextmanager
def running(service_state: str = "running", awaking_polls: int = 1) -> Iterator[FakeCloud]:
    """A started fake; shut down on exit."""
    srv = FakeCloud(service_state, awaking_polls)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    try:
        yield srv
    finally:
        srv.shutdown()
        srv.server_close()
