"""`rtfin dashboard sync|export|open`: render superset_assets/, import them, pull them back, find the URL."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, cast

from rtfin_cli.dashboard.assets import Bundle, context_from_settings, render
from rtfin_cli.dashboard.client import SupersetClient, preset_token
from rtfin_cli.dashboard.export import ExportResult
from rtfin_cli.errors import ConfigError, DataError
from rtfin_cli.settings import RtfinSettings, generated_secrets, secret

Target = Literal["superset", "preset"]


@dataclass
class SyncResult:
    """What `sync` did: the target and host, the assets it rendered, and the dashboard it verified."""

    target: str
    host: str
    assets: list[tuple[str, str, str]]
    dry_run: bool
    dashboard_id: int | None = None
    url: str | None = None
    charts: list[str] = field(default_factory=list)


def assets_dir(settings: RtfinSettings) -> Path:
    """The superset_assets/ folder of the profile."""
    return Path(settings.dashboard.assets_dir).expanduser()


def target_of(settings: RtfinSettings, target: str | None) -> Target:
    """The backend to talk to: ``--target`` if given, else the profile's dashboard.backend."""
    chosen = target or settings.dashboard.backend
    if chosen not in ("superset", "preset"):
        raise ConfigError(f"unknown dashboard target '{chosen}'", "Use --target superset or --target preset.")
    return cast(Target, chosen)


def base_url(settings: RtfinSettings, target: Target) -> str:
    """The Superset URL of the target: the Preset workspace or dashboard.url."""
    d = settings.dashboard
    if target == "preset":
        if not d.preset_workspace:
            raise ConfigError(
                "dashboard.preset_workspace is not set",
                "Set it to the workspace URL, e.g. https://xxxx.us1a.app.preset.io.",
            )
        return d.preset_workspace.rstrip("/")
    return d.url.rstrip("/")


def connect(settings: RtfinSettings, target: Target) -> SupersetClient:
    """A logged-in client for the target (self-hosted Superset or a Preset workspace)."""
    d = settings.dashboard
    client = SupersetClient(base_url(settings, target), timeout=d.timeout_s)
    if target == "preset":
        token, api_secret = secret(d.preset_api_token), secret(d.preset_api_secret)
        if not token or not api_secret:
            raise ConfigError(
                "dashboard.preset_api_token / preset_api_secret are not set",
                "Set RTFIN__DASHBOARD__PRESET_API_TOKEN and RTFIN__DASHBOARD__PRESET_API_SECRET.",
            )
        client.reauth = lambda: preset_token(d.preset_api_url, token, api_secret, timeout=d.timeout_s)
        client.use_token(client.reauth())
        return client
    password = secret(d.password) or _local_admin_password(settings)
    if not password:
        raise ConfigError(
            f"no password for Superset user '{d.username}' at {client.host}",
            "Set RTFIN__DASHBOARD__PASSWORD, or start the local one with `rtfin local superset start`.",
        )
    client.login(d.username, password)
    return client


def _local_admin_password(settings: RtfinSettings) -> str | None:
    """The generated password of the local Superset, when the profile points at this machine."""
    found = generated_secrets(settings).get("dashboard.password")
    return found[0] if found else None


def plan(settings: RtfinSettings) -> Bundle:
    """Render and validate the assets (no network)."""
    has_password = bool(secret(settings.clickhouse.password))
    return render(assets_dir(settings), context_from_settings(settings, has_password))


def _dashboard_doc(bundle: Bundle) -> dict[str, Any]:
    """The bundle's dashboard document (validation guarantees there is one)."""
    return next(iter(bundle.of_kind("dashboards").values()))


def _dashboard_key(doc: dict[str, Any]) -> str:
    """How the API finds the dashboard: its slug, else its uuid."""
    return str(doc.get("slug") or doc["uuid"])


def _dashboard_path(dash: dict[str, Any]) -> str:
    """The dashboard's path on the server, as the API reports it."""
    return str(dash.get("url") or f"/superset/dashboard/{dash['id']}/")


def _synced_dashboard(client: SupersetClient, doc: dict[str, Any]) -> dict[str, Any]:
    """The server's record of the assets' dashboard; DataError when it was never synced."""
    dash = client.dashboard(_dashboard_key(doc))
    if dash is None:
        raise DataError(
            f"{client.host}: dashboard '{doc['dashboard_title']}' not found",
            "Run `rtfin dashboard sync` first.",
        )
    return dash


def sync(settings: RtfinSettings, target: str | None = None, dry_run: bool = False) -> SyncResult:
    """Render, import (one server-side transaction, overwrite by uuid) and verify the dashboard."""
    chosen = target_of(settings, target)
    bundle = plan(settings)
    result = SyncResult(chosen, base_url(settings, chosen), bundle.summary(), dry_run)
    if dry_run:
        return result
    password = secret(settings.clickhouse.password)
    passwords = {path: password for path in bundle.database_files} if password else {}
    client = connect(settings, chosen)
    try:
        client.import_assets(bundle.zip_bytes(), passwords)
        verify(client, bundle, result)
    finally:
        client.close()
    return result


def verify(client: SupersetClient, bundle: Bundle, result: SyncResult) -> None:
    """After an import: the dashboard exists once, with every chart of the bundle."""
    doc = _dashboard_doc(bundle)
    dash = client.dashboard(_dashboard_key(doc))
    if dash is None:
        raise DataError(f"{client.host}: dashboard '{doc['dashboard_title']}' missing after import")
    title = str(doc["dashboard_title"]).replace("'", "!'")
    same_title = client.count("dashboard", f"(filters:!((col:dashboard_title,opr:eq,value:'{title}')))")
    if same_title != 1:
        raise DataError(
            f"{client.host}: {same_title} dashboards titled '{doc['dashboard_title']}' after import",
            "Delete the stale copies in the UI; rtfin imports by uuid and keeps one.",
        )
    wanted = {str(d["uuid"]) for d in bundle.of_kind("charts").values()}
    charts = client.dashboard_charts(int(dash["id"]))
    names = sorted(str(c.get("slice_name")) for c in charts)
    if len(charts) != len(wanted):
        raise DataError(
            f"{client.host}: dashboard has {len(charts)} charts after import, expected {len(wanted)}",
            "The import did not complete; check the Superset log and sync again.",
        )
    result.dashboard_id = int(dash["id"])
    result.url = client.base_url + _dashboard_path(dash)
    result.charts = names


def dashboard_url(settings: RtfinSettings, target: str | None = None, check: bool = True) -> str:
    """The dashboard's URL; with ``check`` it is looked up on the server (raises if it was never synced)."""
    chosen = target_of(settings, target)
    doc = _dashboard_doc(plan(settings))
    base = base_url(settings, chosen)
    if not check:
        return f"{base}/superset/dashboard/{_dashboard_key(doc)}/"
    client = connect(settings, chosen)
    try:
        dash = _synced_dashboard(client, doc)
    finally:
        client.close()
    return base + _dashboard_path(dash)


def export(settings: RtfinSettings, target: str | None = None, out: Path | None = None) -> ExportResult:
    """Download the dashboard (by its slug/uuid in the assets) and write it back as templates."""
    from rtfin_cli.dashboard import export as exp

    chosen = target_of(settings, target)
    folder = Path(out) if out else assets_dir(settings)
    doc = _dashboard_doc(plan(settings))
    client = connect(settings, chosen)
    try:
        data = client.export_dashboard(int(_synced_dashboard(client, doc)["id"]))
    finally:
        client.close()
    files = exp.normalize(exp.read_zip(data), assets_dir(settings), settings.clickhouse.database,
                          settings.dashboard.refresh_s)  # fmt: skip
    return exp.write(folder, files)
