"""Ingest mode ``clickpipes`` (ClickHouse Cloud): the three ClickPipes through the Cloud API.

``/v1/organizations/{org}/services/{svc}/clickpipes`` with key id/secret (HTTP basic auth):
GET lists, POST creates, PATCH ``/{id}`` updates, PATCH ``/{id}/state`` ``{"command": "start"|"stop"}``.
Pipes are matched by name (``rtfin-<table>``): an existing pipe is updated, never duplicated.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import httpx

from rtfin_cli.errors import AuthError, ConfigError, RtfinError, ServiceUnavailable
from rtfin_cli.settings import RtfinSettings, secret
from rtfin_cli.warehouse.records import KAFKA_COLUMNS, SCHEMAS

# Kafka virtual columns ClickPipes can map into our bookkeeping columns.
VIRTUAL = {"_topic": "_topic", "_partition": "_partition", "_offset": "_offset"}


@dataclass
class PipeState:
    name: str
    id: str
    state: str
    action: str  # created | updated | unchanged | started | stopped | listed

    def as_dict(self) -> dict[str, str]:
        return {"name": self.name, "id": self.id, "state": self.state, "action": self.action}


def pipe_name(table: str) -> str:
    return f"rtfin-{table}"


class ClickPipesApi:
    """A small client of the ClickHouse Cloud ClickPipes API."""

    def __init__(self, settings: RtfinSettings, transport: httpx.BaseTransport | None = None) -> None:
        cp = settings.clickhouse.clickpipes
        missing = [k for k in ("organization_id", "service_id", "key_id") if not getattr(cp, k)]
        if not secret(cp.key_secret):
            missing.append("key_secret")
        if missing:
            raise ConfigError(
                f"clickhouse.ingest = 'clickpipes' needs clickhouse.clickpipes.{', '.join(missing)}",
                "Set them in rtfin.toml or as RTFIN__CLICKHOUSE__CLICKPIPES__<KEY> (the secret via env).",
            )
        self.settings = settings
        self.base = f"/v1/organizations/{cp.organization_id}/services/{cp.service_id}/clickpipes"
        self.api_url = cp.api_url.rstrip("/")
        self.key_id = cp.key_id or ""
        self.http = httpx.Client(
            base_url=self.api_url,
            auth=(self.key_id, secret(cp.key_secret)),
            timeout=settings.clickhouse.connect_timeout_s,
            transport=transport,
            headers={"User-Agent": "rtfin"},
        )

    def close(self) -> None:
        self.http.close()

    def _call(self, method: str, path: str = "", body: dict[str, Any] | None = None) -> Any:
        delay = 0.5
        for attempt in range(5):
            try:
                resp = self.http.request(method, self.base + path, json=body)
            except httpx.HTTPError as exc:
                if attempt == 4:
                    raise ServiceUnavailable(
                        f"ClickHouse Cloud API at {self.api_url} is unreachable ({type(exc).__name__})",
                        "Check clickhouse.clickpipes.api_url and the network.",
                    ) from None
                time.sleep(delay)
                delay *= 2
                continue
            if resp.status_code in (429, 502, 503, 504) and attempt < 4:
                time.sleep(float(resp.headers.get("Retry-After", delay)))
                delay *= 2
                continue
            if resp.status_code in (401, 403):
                raise AuthError(
                    f"ClickHouse Cloud API at {self.api_url} refused key '{self.key_id}' "
                    f"(HTTP {resp.status_code})",
                    "Check clickhouse.clickpipes.key_id / key_secret and the key's role.",
                )
            if resp.status_code >= 400:
                try:
                    detail = str(resp.json().get("error", ""))
                except ValueError:
                    detail = resp.text[:200]
                raise RtfinError(
                    f"ClickPipes API {method} {path or '/'} failed: HTTP {resp.status_code} {detail}"
                )
            return resp.json().get("result") if resp.content else None
        raise ServiceUnavailable(f"ClickHouse Cloud API at {self.api_url} keeps failing")  # pragma: no cover

    def list(self) -> list[dict[str, Any]]:
        return list(self._call("GET") or [])

    def create(self, body: dict[str, Any]) -> dict[str, Any]:
        return dict(self._call("POST", "", body))

    def update(self, pipe_id: str, body: dict[str, Any]) -> dict[str, Any]:
        return dict(self._call("PATCH", f"/{pipe_id}", body))

    def set_state(self, pipe_id: str, command: str) -> dict[str, Any]:
        return dict(self._call("PATCH", f"/{pipe_id}/state", {"command": command}))


def desired(settings: RtfinSettings, column_types: dict[str, dict[str, str]]) -> list[dict[str, Any]]:
    """The POST bodies of the three pipes; ``column_types`` = {table: {column: ClickHouse type}}."""
    k, ch = settings.kafka, settings.clickhouse
    out = []
    for table, topic in k.topics.by_table().items():
        types = column_types[table]
        fields = [c for c, _ in SCHEMAS[table]]
        mappings = [{"sourceField": c, "destinationField": c} for c in fields]
        mappings += [{"sourceField": VIRTUAL[c], "destinationField": c} for c in KAFKA_COLUMNS]
        source: dict[str, Any] = {
            "type": settings.clickhouse.clickpipes.source_type,
            "format": "JSONEachRow",
            "brokers": k.bootstrap,
            "topics": topic,
            "consumerGroup": ch.clickpipes.group(table),
            "offset": {"strategy": "from_beginning"},
        }
        if k.security_protocol.startswith("SASL"):
            source["authentication"] = k.sasl_mechanism
            source["credentials"] = {"username": k.sasl_username or "", "password": secret(k.sasl_password)}
        out.append(
            {
                "name": pipe_name(table),
                "description": f"rtfin: {topic} -> {ch.raw_database}.{table}",
                "scaling": {"replicas": ch.clickpipes.replicas},
                "source": {"kafka": source},
                "destination": {
                    "database": ch.raw_database,
                    "table": table,
                    "managedTable": False,
                    "columns": [{"name": c, "type": types[c]} for c in fields + KAFKA_COLUMNS],
                },
                "fieldMappings": mappings,
            }
        )
    return out


def _patch_body(want: dict[str, Any]) -> dict[str, Any]:
    """The updatable part of a pipe: description, credentials, columns and field mappings."""
    body: dict[str, Any] = {
        "description": want["description"],
        "destination": {"columns": want["destination"]["columns"]},
        "fieldMappings": want["fieldMappings"],
    }
    creds = want["source"]["kafka"].get("credentials")
    if creds:
        body["source"] = {"kafka": {"credentials": creds}}
    return body


def _differs(have: dict[str, Any], want: dict[str, Any]) -> bool:
    return bool(
        have.get("description") != want["description"]
        or have.get("fieldMappings") != want["fieldMappings"]
        or (have.get("destination") or {}).get("columns") != want["destination"]["columns"]
        or want["source"]["kafka"].get("credentials")  # secrets are never read back: always refresh them
    )


def sync(api: ClickPipesApi, bodies: list[dict[str, Any]], start: bool = True) -> list[PipeState]:
    """Create missing pipes, update changed ones, start them; idempotent by pipe name."""
    existing = {p.get("name"): p for p in api.list()}
    out = []
    for want in bodies:
        have = existing.get(want["name"])
        if have is None:
            pipe, action = api.create(want), "created"
        elif _differs(have, want):
            pipe, action = api.update(str(have["id"]), _patch_body(want)), "updated"
        else:
            pipe, action = have, "unchanged"
        if start and str(pipe.get("state", "")).lower() not in ("running", "provisioning"):
            pipe = api.set_state(str(pipe["id"]), "start")
        out.append(PipeState(want["name"], str(pipe["id"]), str(pipe.get("state", "")), action))
    return out


def set_all(api: ClickPipesApi, command: str) -> list[PipeState]:
    """Start or stop rtfin's pipes."""
    if command not in ("start", "stop"):
        raise RtfinError(f"unknown ClickPipes command {command!r}")
    out = []
    for pipe in api.list():
        if str(pipe.get("name", "")).startswith("rtfin-"):
            new = api.set_state(str(pipe["id"]), command)
            done = "started" if command == "start" else "stopped"
            out.append(PipeState(str(pipe["name"]), str(pipe["id"]), str(new.get("state", "")), done))
    return out


def states(api: ClickPipesApi) -> list[PipeState]:
    return [
        PipeState(str(p["name"]), str(p["id"]), str(p.get("state", "")), "listed")
        for p in api.list()
        if str(p.get("name", "")).startswith("rtfin-")
    ]
