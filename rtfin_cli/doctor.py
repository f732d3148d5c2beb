"""`rtfin doctor`: check every configured service, like `dbt debug`. Pure data; the cli renders it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlparse

from rtfin_cli.errors import RtfinError
from rtfin_cli.settings import RtfinSettings, secret


@dataclass
class Check:
    name: str
    status: str  # pass | fail | skip
    detail: str


def _is_local(url: str) -> bool:
    return (urlparse(url).hostname or "") in ("127.0.0.1", "localhost", "::1")


def check_kafka(s: RtfinSettings) -> Check:
    from rtfin_cli.kafka.clients import check_reachable

    meta = check_reachable(s.kafka, timeout=min(5.0, s.kafka.timeout_s))
    return Check("kafka", "pass", f"{s.kafka.bootstrap}: {len(meta.brokers)} broker(s)")


def check_topics(s: RtfinSettings) -> Check:
    from rtfin_cli.kafka.admin import pipeline_topics
    from rtfin_cli.kafka.clients import check_reachable

    meta = check_reachable(s.kafka, timeout=min(5.0, s.kafka.timeout_s))
    missing = [t for t in pipeline_topics(s.kafka) if t not in meta.topics]
    if missing:
        return Check("topics", "fail", f"missing {', '.join(missing)} (run `rtfin topics create`)")
    return Check("topics", "pass", "all 4 pipeline topics exist")


def check_clickhouse(s: RtfinSettings) -> Check:
    from rtfin_cli.warehouse.client import get_client, where

    client = get_client(s, send_receive_timeout=10)
    version = client.command("SELECT version()")
    return Check("clickhouse", "pass", f"{where(s.clickhouse)} version {version}")


def check_databricks(s: RtfinSettings) -> Check:
    db = s.databricks
    if not db.host:
        return Check("databricks", "skip", "databricks.host not set")
    import httpx

    try:  # one quick probe: the SDK otherwise retries an unreachable host for a long time
        httpx.get(db.host, timeout=5)
    except httpx.HTTPError as exc:
        return Check("databricks", "fail", f"{db.host} unreachable ({type(exc).__name__})")
    from databricks.sdk import WorkspaceClient
    from databricks.sdk.config import Config

    cfg = Config(
        host=db.host,
        token=secret(db.token),
        auth_type="pat",
        retry_timeout_seconds=15,
        http_timeout_seconds=10,
    )
    me = WorkspaceClient(config=cfg).current_user.me()
    return Check("databricks", "pass", f"{db.host} as {me.user_name}")


def check_dashboard(s: RtfinSettings) -> Check:
    import httpx

    d = s.dashboard
    if d.backend == "preset":
        if not (secret(d.preset_api_token) and secret(d.preset_api_secret)):
            return Check("preset", "fail", "dashboard.preset_api_token / preset_api_secret not set")
        return Check("preset", "pass", "API token and secret present")
    resp = httpx.get(d.url.rstrip("/") + "/health", timeout=5)
    ok = resp.status_code == 200
    return Check("superset", "pass" if ok else "fail", f"{d.url} /health -> HTTP {resp.status_code}")


def check_polygon(s: RtfinSettings) -> Check:
    if secret(s.polygon.api_key):
        return Check("polygon", "pass", f"API key present for {s.polygon.rest_url}")
    if _is_local(s.polygon.rest_url):
        return Check("polygon", "skip", f"local replay server {s.polygon.rest_url} needs no key")
    return Check("polygon", "fail", "polygon.api_key not set (RTFIN__POLYGON__API_KEY)")


CHECKS: list[Callable[[RtfinSettings], Check]] = [
    check_kafka, check_topics, check_clickhouse, check_databricks, check_dashboard, check_polygon,
]  # fmt: skip


def run_checks(s: RtfinSettings) -> list[Check]:
    """Run every check; a failing check never stops the others."""
    results = []
    for check in CHECKS:
        name = check.__name__.removeprefix("check_")
        try:
            results.append(check(s))
        except RtfinError as exc:
            results.append(Check(name, "fail", exc.message))
        except Exception as exc:  # noqa: BLE001 - a client's own error is the detail to show
            results.append(Check(name, "fail", f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"))
    return results
