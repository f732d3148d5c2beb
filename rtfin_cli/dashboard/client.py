"""A small Superset REST client (self-hosted Superset or a Preset workspace) over httpx.

Self-hosted: ``/api/v1/security/login`` (JWT) + ``/api/v1/security/csrf_token/``.
Preset: ``POST {preset_api_url}/v1/auth/`` with the API token/secret → JWT, then the workspace's
Superset API with that bearer token (+ CSRF token when the workspace hands one out).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import httpx

from rtfin_cli.errors import AuthError, RtfinError, ServiceUnavailable


def _host(url: str) -> str:
    parts = urlsplit(url)
    return parts.netloc or url


def _detail(resp: httpx.Response) -> str:
    """The most useful one-line message in a Superset/Preset error response."""
    if "html" in resp.headers.get("content-type", ""):
        return f"HTTP {resp.status_code} {resp.reason_phrase}; the server's log has the details"
    try:
        body = resp.json()
    except ValueError:
        return resp.text.strip().splitlines()[0][:200] if resp.text.strip() else resp.reason_phrase
    if isinstance(body, dict):
        errors = body.get("errors")
        if isinstance(errors, list) and errors:
            first = errors[0]
            extra = first.get("extra") or {}
            files = [k for k in extra if isinstance(k, str) and k.endswith((".yaml", ".yml"))]
            msg = str(first.get("message", ""))
            if files:
                msg += f" in {files[0]}: {json.dumps(extra[files[0]])[:200]}"
            return msg
        for key in ("message", "msg", "error", "errors"):
            if body.get(key):
                return str(body[key])[:300]
    return str(body)[:300]


class SupersetClient:
    """Authenticated calls to one Superset (or Preset workspace) API."""

    def __init__(
        self, base_url: str, timeout: float = 60.0, transport: httpx.BaseTransport | None = None
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.host = _host(self.base_url)
        self._http = httpx.Client(
            base_url=self.base_url, timeout=timeout, transport=transport, follow_redirects=False
        )
        self._headers: dict[str, str] = {}
        # Fetches a fresh access token (Preset): a call answered 401 because the token expired is
        # re-authenticated once and sent again, as preset-cli's Auth.reauth does.
        self.reauth: Callable[[], str] | None = None

    # -- auth ------------------------------------------------------------------------------------
    def login(self, username: str, password: str) -> None:
        """Username/password login (self-hosted Superset)."""
        resp = self._send(
            "POST",
            "/api/v1/security/login",
            json={"username": username, "password": password, "provider": "db", "refresh": False},
            auth=False,
        )
        if resp.status_code in (400, 401, 403):
            raise AuthError(
                f"Superset at {self.host} refused the login for user '{username}'",
                "Check dashboard.username / dashboard.password (RTFIN__DASHBOARD__PASSWORD).",
            )
        self._check(resp, "login")
        self.use_token(str(resp.json()["access_token"]))

    def use_token(self, token: str) -> None:
        """Use a bearer token (from login or Preset) and fetch a CSRF token for writes."""
        self._headers = {"Authorization": f"Bearer {token}"}
        resp = self._request("GET", "/api/v1/security/csrf_token/", self._headers, {})
        if resp.status_code == 401:  # 403/404: a workspace that hands out no CSRF token for bearer calls
            raise AuthError(
                f"{self.host} refused the access token", "Check the dashboard credentials of the profile."
            )
        if resp.status_code == 200:
            self._headers["X-CSRFToken"] = str(resp.json()["result"])
            self._headers["Referer"] = self.base_url + "/"

    # -- plumbing --------------------------------------------------------------------------------
    def _send(self, method: str, path: str, auth: bool = True, **kwargs: Any) -> httpx.Response:
        extra = kwargs.pop("headers", {})
        resp = self._request(method, path, {**(self._headers if auth else {}), **extra}, kwargs)
        if resp.status_code == 401 and auth and self.reauth is not None:
            self.use_token(self.reauth())
            resp = self._request(method, path, {**self._headers, **extra}, kwargs)
        return resp

    def _request(
        self, method: str, path: str, headers: dict[str, str], kwargs: dict[str, Any]
    ) -> httpx.Response:
        try:
            return self._http.request(method, path, headers=headers, **kwargs)
        except httpx.TransportError as exc:
            raise ServiceUnavailable(
                f"cannot reach Superset at {self.host}: {type(exc).__name__}: {exc}",
                "Is it running? `rtfin local superset start`, or check dashboard.url / preset_workspace.",
            ) from None

    def _check(self, resp: httpx.Response, what: str) -> httpx.Response:
        if resp.status_code in (401, 403):
            raise AuthError(f"{self.host}: {what} not allowed ({resp.status_code}: {_detail(resp)})")
        if resp.status_code >= 400:
            raise RtfinError(f"{self.host}: {what} failed ({resp.status_code}: {_detail(resp)})", exit_code=4)
        return resp

    def get_json(self, path: str, what: str, **params: Any) -> Any:
        return self._check(self._send("GET", path, params=params or None), what).json()

    # -- endpoints -------------------------------------------------------------------------------
    def import_assets(self, bundle: bytes, passwords: dict[str, str]) -> None:
        """POST /api/v1/assets/import/: one server-side transaction (all or nothing), overwriting by uuid."""
        resp = self._send(
            "POST",
            "/api/v1/assets/import/",
            files={"bundle": ("rtfin_dashboard.zip", bundle, "application/zip")},
            data={"passwords": json.dumps(passwords), "overwrite": "true"},
        )
        if resp.status_code >= 400 and resp.status_code not in (401, 403):
            raise RtfinError(
                f"{self.host}: asset import rejected, nothing imported ({resp.status_code}: {_detail(resp)})",
                "Superset imports a bundle in one transaction: nothing changed. Fix the asset, sync again.",
                exit_code=6,
            )
        self._check(resp, "asset import")

    def dashboard(self, id_or_slug: str | int) -> dict[str, Any] | None:
        resp = self._send("GET", f"/api/v1/dashboard/{id_or_slug}")
        if resp.status_code == 404:
            return None
        return dict(self._check(resp, "dashboard lookup").json()["result"])

    def dashboard_charts(self, dashboard_id: int) -> list[dict[str, Any]]:
        return list(self.get_json(f"/api/v1/dashboard/{dashboard_id}/charts", "dashboard charts")["result"])

    def count(self, resource: str, rison: str) -> int:
        return int(self.get_json(f"/api/v1/{resource}/", f"{resource} list", q=rison)["count"])

    def export_dashboard(self, dashboard_id: int) -> bytes:
        resp = self._send("GET", "/api/v1/dashboard/export/", params={"q": f"!({dashboard_id})"})
        return self._check(resp, "dashboard export").content

    def chart_data(self, chart_id: int) -> dict[str, Any]:
        return dict(self.get_json(f"/api/v1/chart/{chart_id}/data/", f"chart {chart_id} data"))

    def close(self) -> None:
        self._http.close()


def preset_token(api_url: str, token: str, secret: str, timeout: float = 30.0) -> str:
    """Exchange a Preset API token/secret for a JWT at ``{api_url}/v1/auth/``."""
    host = _host(api_url)
    try:
        resp = httpx.post(
            f"{api_url.rstrip('/')}/v1/auth/", json={"name": token, "secret": secret}, timeout=timeout
        )
    except httpx.TransportError as exc:
        raise ServiceUnavailable(
            f"cannot reach Preset at {host}: {type(exc).__name__}", "Check dashboard.preset_api_url."
        ) from None
    if resp.status_code in (400, 401, 403):
        raise AuthError(
            f"Preset at {host} refused the API token ({resp.status_code})",
            "Check dashboard.preset_api_token / preset_api_secret (RTFIN__DASHBOARD__PRESET_API_TOKEN, ...).",
        )
    if resp.status_code >= 400:
        raise ServiceUnavailable(f"Preset at {host}: auth failed ({resp.status_code}: {_detail(resp)})")
    try:
        return str(resp.json()["payload"]["access_token"])
    except (ValueError, KeyError, TypeError):
        raise ServiceUnavailable(f"Preset at {host}: unexpected auth response") from None
