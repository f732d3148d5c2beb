"""Ingest mode ``clickpipes`` (ClickHouse Cloud): the three ClickPipes through the Cloud API.

``/v1/organizations/{org}/services/{svc}/clickpipes`` with key id/secret (HTTP basic auth): GET lists,
POST creates, PATCH ``/{id}`` updates, PATCH ``/{id}/scaling`` scales, PATCH ``/{id}/state`` starts or
stops. Pipes are matched by name (``rtfin-<table>``): an existing pipe is updated, never duplicated, and
an unchanged one is left alone (no request beyond the list). The calls behave as the official Terraform
provider's client (ClickHouse/terraform-provider-clickhouse, ``pkg/internal/api``): 429 waits for
``X-RateLimit-Reset``, 5xx is retried with a doubling wait, and a 424 "Current state: idle" wakes the
service (PATCH ``/services/{svc}/state`` ``awake``), waits for it to run and retries the request once.
The bodies and the settings they come from are in :mod:`rtfin_cli.warehouse.clickpipes_contract`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import httpx

from rtfin_cli.errors import AuthError, RtfinError, ServiceUnavailable
from rtfin_cli.report import EventKind, NullReporter, Reporter, message
from rtfin_cli.settings import RtfinSettings, secret
from rtfin_cli.warehouse import clickpipes_contract as contract
from rtfin_cli.warehouse.clickpipes_contract import desired, pipe_name

__all__ = ["ClickPipesApi", "PipeState", "desired", "pipe_name", "set_all", "states", "sync"]
STAGE = "clickpipes"
IDLE = "Current state: idle"
FAILED = ("Failed", "InternalError")


@dataclass
class PipeState:
    name: str
    id: str
    state: str
    action: str  # created | updated | unchanged | started | stopped | listed | would-create | would-update
    requests: list[dict[str, Any]] = field(default_factory=list)  # dry run: what would be sent (masked)

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "id": self.id, "state": self.state, "action": self.action}
        if self.requests:
            out["requests"] = self.requests
        return out


class ClickPipesApi:
    """A small client of the ClickHouse Cloud ClickPipes API (and the service state it depends on)."""

    retries = 5
    wake_poll_s = 5.0  # the provider polls the service state every 5 s ...
    wake_timeout_s = 600.0  # ... for at most 10 minutes

    def __init__(
        self,
        settings: RtfinSettings,
        transport: httpx.BaseTransport | None = None,
        reporter: Reporter | None = None,
    ) -> None:
        contract.check_settings(settings)
        cp = settings.clickhouse.clickpipes
        self.settings = settings
        self.service = f"/v1/organizations/{cp.organization_id}/services/{cp.service_id}"
        self.base = self.service + "/clickpipes"
        self.api_url = cp.api_url.rstrip("/")
        self.key_id = cp.key_id or ""
        self.reporter = reporter or NullReporter()
        self.marks = contract.CredentialMarks(
            settings.local.path("clickpipes", f"{cp.organization_id}-{cp.service_id}.json")
        )
        self.http = httpx.Client(
            base_url=self.api_url,
            auth=(self.key_id, secret(cp.key_secret)),
            timeout=settings.clickhouse.connect_timeout_s,
            transport=transport,
            headers={"User-Agent": "rtfin"},
        )

    def close(self) -> None:
        self.http.close()

    def _send(self, method: str, path: str, body: dict[str, Any] | None) -> httpx.Response:
        """One request, retried on network errors, 429 and 5xx; returns the final response."""
        delay = 1.0
        for attempt in range(self.retries):
            last = attempt == self.retries - 1
            try:
                resp = self.http.request(method, path, json=body)
            except httpx.HTTPError as exc:
                if last:
                    raise ServiceUnavailable(
                        f"ClickHouse Cloud API at {self.api_url} is unreachable ({type(exc).__name__})",
                        "Check clickhouse.clickpipes.api_url and the network.",
                    ) from None
                time.sleep(delay)
                delay *= 2
                continue
            if resp.status_code == 429 and not last:
                reset = resp.headers.get("X-RateLimit-Reset") or resp.headers.get("Retry-After")
                time.sleep(float(reset) + 1 if reset else delay)
                delay *= 2
                continue
            if resp.status_code >= 500 and not last:
                time.sleep(delay)
                delay *= 2
                continue
            return resp
        raise AssertionError("unreachable")  # pragma: no cover

    def _error(self, method: str, path: str, resp: httpx.Response) -> RtfinError:
        if resp.status_code in (401, 403):
            return AuthError(
                f"ClickHouse Cloud API at {self.api_url} refused key '{self.key_id}' (HTTP {resp.status_code})",
                "Check clickhouse.clickpipes.key_id / key_secret, the key's role and that it is not revoked.",
            )
        try:
            detail = str(resp.json().get("error", ""))
        except ValueError:
            detail = resp.text[:200]
        if resp.status_code == 424:
            return ServiceUnavailable(
                f"ClickHouse Cloud service {self.settings.clickhouse.clickpipes.service_id} cannot take "
                f"ClickPipes requests: {detail}",
                "A stopped service is not started by rtfin: start it in the ClickHouse Cloud console.",
            )
        where = path.removeprefix(self.base) or "/"
        return RtfinError(f"ClickPipes API {method} {where} failed: HTTP {resp.status_code} {detail}")

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        """A request to an API path; a ClickPipes request refused because the service idles is retried
        once after waking it (as the provider's ``doClickPipeRequest``)."""
        resp = self._send(method, path, body)
        if resp.status_code == 424 and IDLE in resp.text and path.startswith(self.base):
            self._wake()
            resp = self._send(method, path, body)
        if resp.status_code >= 400:
            raise self._error(method, path, resp)
        return resp.json().get("result") if resp.content else None

    def _wake(self) -> None:
        """Wake an idle service and wait until it runs (the only state ClickPipes accepts requests in)."""
        message(self.reporter, STAGE, "ClickHouse Cloud service is idle: waking it up")
        self.call("PATCH", self.service + "/state", {"command": "awake"})
        deadline, last = time.monotonic() + self.wake_timeout_s, ""
        while True:
            state = str((self.call("GET", self.service) or {}).get("state", ""))
            if state != last:
                message(self.reporter, STAGE, f"service state: {state}")
                last = state
            if state == "running":
                return
            if time.monotonic() > deadline:
                raise ServiceUnavailable(
                    f"ClickHouse Cloud service did not reach 'running' within {self.wake_timeout_s:.0f}s "
                    f"after waking (state: {state})",
                    "Check the service in the ClickHouse Cloud console, then run the command again.",
                )
            time.sleep(self.wake_poll_s)

    def list(self) -> list[dict[str, Any]]:
        return list(self.call("GET", self.base) or [])

    def create(self, body: dict[str, Any]) -> dict[str, Any]:
        return dict(self.call("POST", self.base, body))

    def set_state(self, pipe_id: str, command: str) -> dict[str, Any]:
        return dict(self.call("PATCH", f"{self.base}/{pipe_id}/state", {"command": command}))


Request = tuple[str, str, dict[str, Any]]  # method, API path, body


def _shown(requests: list[Request]) -> list[dict[str, Any]]:
    """Requests as a dry run prints them: ``{METHOD: path, "body": body}``, credentials masked."""
    return [{method: path, "body": contract.masked(body)} for method, path, body in requests]


def _changes(api: ClickPipesApi, have: dict[str, Any], want: dict[str, Any], start: bool) -> list[Request]:
    """The requests that turn the existing pipe ``have`` into ``want`` (none when it already is)."""
    pid, name = str(have["id"]), want["name"]
    fixed = contract.fixed_changes(have, want)
    if fixed:
        raise RtfinError(
            f"pipe {name} differs in {', '.join(fixed)}, which ClickPipes cannot change in place",
            f"Delete the pipe in the ClickHouse Cloud console (id {pid}); the next run recreates it.",
        )
    creds = want["source"]["kafka"]["credentials"]
    out: list[Request] = []
    body = contract.update_body(have, want, send_credentials=not api.marks.current(pid, creds))
    if body:
        out.append(("PATCH", f"{api.base}/{pid}", body))
    replicas = want["scaling"]["replicas"]
    if ((have.get("scaling") or {}).get("replicas") or 1) != replicas:
        out.append(("PATCH", f"{api.base}/{pid}/scaling", {"replicas": replicas}))
    if start and have.get("state") == "Stopped":
        out.append(("PATCH", f"{api.base}/{pid}/state", {"command": "start"}))
    return out


def _sync_one(
    api: ClickPipesApi, have: dict[str, Any] | None, want: dict[str, Any], start: bool, dry_run: bool
) -> PipeState:
    name, creds = want["name"], want["source"]["kafka"]["credentials"]
    if have is None:
        if dry_run:
            return PipeState(name, "", "", "would-create", _shown([("POST", api.base, want)]))
        pipe = api.create(want)
        api.marks.record(str(pipe["id"]), creds)
        return PipeState(name, str(pipe["id"]), str(pipe.get("state", "")), "created")
    pid, state = str(have["id"]), str(have.get("state", ""))
    requests = _changes(api, have, want, start)
    if dry_run:
        return PipeState(name, pid, state, "would-update" if requests else "unchanged", _shown(requests))
    for method, path, body in requests:
        state = str((api.call(method, path, body) or {}).get("state", state))
        if "credentials" in (body.get("source") or {}).get("kafka", {}):
            api.marks.record(pid, creds)
    if not requests:
        return PipeState(name, pid, state, "unchanged")
    only_start = len(requests) == 1 and requests[0][1].endswith("/state")
    return PipeState(name, pid, state, "started" if only_start else "updated")


def sync(
    api: ClickPipesApi, bodies: list[dict[str, Any]], start: bool = True, dry_run: bool = False
) -> list[PipeState]:
    """Create missing pipes, update changed ones, start stopped ones; idempotent by pipe name.

    A new pipe starts by itself (whatever state the create answer reports, e.g. ``Unknown``); an
    existing one is started only when it is ``Stopped``. ``dry_run`` only lists the pipes and returns
    the requests it would send (credentials masked).
    """
    existing = {p.get("name"): p for p in api.list()}
    out = [_sync_one(api, existing.get(want["name"]), want, start, dry_run) for want in bodies]
    for pipe in out:
        if pipe.state in FAILED:  # the provider's read refuses these states with the same advice
            message(
                api.reporter,
                STAGE,
                f"pipe {pipe.name} is {pipe.state}: review its logs in the ClickHouse Cloud console",
                EventKind.WARNING,
            )
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
