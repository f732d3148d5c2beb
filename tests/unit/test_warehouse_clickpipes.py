"""The ClickPipes client's real HTTP calls against a local server that implements the Cloud API endpoints
(list, create, update, state) with state, so idempotence is checked on what the server holds."""

from __future__ import annotations

import base64
import json
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from rtfin_cli.errors import AuthError, ConfigError
from rtfin_cli.settings import RtfinSettings
from rtfin_cli.warehouse import clickpipes
from rtfin_cli.warehouse.records import SCHEMAS

ORG, SVC, KEY, SECRET = "org-1", "svc-1", "key-id", "key-secret-value"


class FakeCloud(ThreadingHTTPServer):
    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.pipes: dict[str, dict[str, Any]] = {}
        self.requests: list[tuple[str, str, Any, str]] = []


class Handler(BaseHTTPRequestHandler):
    server: FakeCloud

    def log_message(self, *args: Any) -> None:
        pass

    def _reply(self, status: int, result: Any = None, error: str = "") -> None:
        body = {"status": status, "requestId": str(uuid.uuid4())}
        body.update({"result": result} if status < 400 else {"error": error})
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length)) if length else None
        self.server.requests.append((self.command, self.path, body, self.headers.get("Authorization", "")))
        if (
            self.headers.get("Authorization")
            != "Basic " + base64.b64encode(f"{KEY}:{SECRET}".encode()).decode()
        ):
            return self._reply(401, error="Unauthorized")
        base = f"/v1/organizations/{ORG}/services/{SVC}/clickpipes"
        if not self.path.startswith(base):
            return self._reply(404, error="Not found")
        rest = self.path[len(base) :].strip("/").split("/") if self.path != base else []
        pipes = self.server.pipes
        if self.command == "GET" and not rest:
            return self._reply(200, list(pipes.values()))
        if self.command == "POST" and not rest:
            if any(p["name"] == body["name"] for p in pipes.values()):
                return self._reply(400, error="name already exists")
            pid = str(uuid.uuid4())
            pipe = {**json.loads(json.dumps(body)), "id": pid, "serviceId": SVC, "state": "Stopped"}
            pipe["source"]["kafka"].pop("credentials", None)  # never returned by the API
            pipes[pid] = pipe
            return self._reply(200, pipe)
        if not rest or rest[0] not in pipes:
            return self._reply(404, error="ClickPipe not found")
        pipe = pipes[rest[0]]
        if self.command == "PATCH" and len(rest) == 1:
            for key in ("description", "fieldMappings"):
                if key in body:
                    pipe[key] = body[key]
            if "destination" in body:
                pipe["destination"].update(body["destination"])
            return self._reply(200, pipe)
        if self.command == "PATCH" and rest[1:] == ["state"]:
            cmd = body.get("command")
            if cmd not in ("start", "stop", "resync"):
                return self._reply(400, error="bad command")
            pipe["state"] = {"start": "Running", "stop": "Stopped"}.get(cmd, pipe["state"])
            return self._reply(200, pipe)
        return self._reply(405, error="method not allowed")

    do_GET = do_POST = do_PATCH = _handle  # noqa: N815


@pytest.fixture()
def cloud() -> Iterator[FakeCloud]:
    srv = FakeCloud()
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    try:
        yield srv
    finally:
        srv.shutdown()
        srv.server_close()


def _settings(cloud: FakeCloud, secret: str = SECRET, **kafka: Any) -> RtfinSettings:
    return RtfinSettings(
        kafka={"bootstrap": "broker.example:9092", **kafka},
        clickhouse={
            "ingest": "clickpipes",
            "clickpipes": {
                "api_url": f"http://127.0.0.1:{cloud.server_address[1]}",
                "organization_id": ORG,
                "service_id": SVC,
                "key_id": KEY,
                "key_secret": secret,
            },
        },
    )


def _types() -> dict[str, dict[str, str]]:
    return {t: {c: "String" for c, _ in cols} | {"_topic": "LowCardinality(String)", "_partition": "Int32", "_offset": "Int64"}
            for t, cols in SCHEMAS.items()}  # fmt: skip


def test_sync_creates_three_pipes_then_is_idempotent(cloud: FakeCloud) -> None:
    s = _settings(cloud)
    api = clickpipes.ClickPipesApi(s)
    first = clickpipes.sync(api, clickpipes.desired(s, _types()))
    assert [(p.name, p.action, p.state) for p in first] == [
        ("rtfin-news", "created", "Running"),
        ("rtfin-stock_aggs", "created", "Running"),
        ("rtfin-news_sentiment", "created", "Running"),
    ]
    posts = [r for r in cloud.requests if r[0] == "POST"]
    assert len(posts) == 3
    news = posts[0][2]
    assert news["source"]["kafka"]["topics"] == "rtfin.news.raw"
    assert news["source"]["kafka"]["brokers"] == "broker.example:9092"
    assert news["destination"] == {**news["destination"], "database": "rtfin_raw", "table": "news",
                                   "managedTable": False}  # fmt: skip
    assert {"sourceField": "_offset", "destinationField": "_offset"} in news["fieldMappings"]
    starts = [r for r in cloud.requests if r[1].endswith("/state")]
    assert [r[2] for r in starts] == [{"command": "start"}] * 3

    cloud.requests.clear()
    second = clickpipes.sync(api, clickpipes.desired(s, _types()))
    assert [p.action for p in second] == ["unchanged"] * 3
    assert len(cloud.pipes) == 3  # never duplicated
    assert [r[0] for r in cloud.requests] == ["GET"]  # nothing to change, already running


def test_changed_pipe_is_updated_not_duplicated(cloud: FakeCloud) -> None:
    s = _settings(cloud)
    api = clickpipes.ClickPipesApi(s)
    clickpipes.sync(api, clickpipes.desired(s, _types()))
    changed = _types()
    changed["news"]["title"] = "LowCardinality(String)"
    cloud.requests.clear()
    out = clickpipes.sync(api, clickpipes.desired(s, changed))
    assert [p.action for p in out] == ["updated", "unchanged", "unchanged"]
    patch = [r for r in cloud.requests if r[0] == "PATCH"]
    assert len(patch) == 1 and patch[0][1].endswith(out[0].id)
    assert {"name": "title", "type": "LowCardinality(String)"} in patch[0][2]["destination"]["columns"]
    assert len(cloud.pipes) == 3


def test_sasl_credentials_are_sent_and_refreshed(cloud: FakeCloud) -> None:
    s = _settings(cloud, security_protocol="SASL_SSL", sasl_username="u", sasl_password="kafka-pw")
    api = clickpipes.ClickPipesApi(s)
    clickpipes.sync(api, clickpipes.desired(s, _types()))
    post = next(r for r in cloud.requests if r[0] == "POST")
    assert post[2]["source"]["kafka"]["credentials"] == {"username": "u", "password": "kafka-pw"}
    assert post[2]["source"]["kafka"]["authentication"] == "PLAIN"
    cloud.requests.clear()
    clickpipes.sync(api, clickpipes.desired(s, _types()))  # the API never returns secrets: refresh them
    patches = [r for r in cloud.requests if r[0] == "PATCH"]
    assert len(patches) == 3 and all(
        p[2]["source"]["kafka"]["credentials"]["password"] == "kafka-pw" for p in patches
    )


def test_stop_and_start_and_states(cloud: FakeCloud) -> None:
    s = _settings(cloud)
    api = clickpipes.ClickPipesApi(s)
    clickpipes.sync(api, clickpipes.desired(s, _types()))
    stopped = clickpipes.set_all(api, "stop")
    assert {p.state for p in stopped} == {"Stopped"} and {p.action for p in stopped} == {"stopped"}
    assert {p.state for p in clickpipes.states(api)} == {"Stopped"}
    started = clickpipes.set_all(api, "start")
    assert {p.state for p in started} == {"Running"}


def test_wrong_key_is_an_auth_error_naming_the_api(cloud: FakeCloud) -> None:
    api = clickpipes.ClickPipesApi(_settings(cloud, secret="wrong"))
    with pytest.raises(AuthError) as err:
        api.list()
    assert f"127.0.0.1:{cloud.server_address[1]}" in err.value.message and "wrong" not in err.value.message


def test_missing_settings_are_a_config_error() -> None:
    with pytest.raises(ConfigError) as err:
        clickpipes.ClickPipesApi(RtfinSettings(clickhouse={"ingest": "clickpipes"}))
    assert "organization_id" in err.value.message and "key_secret" in err.value.message
