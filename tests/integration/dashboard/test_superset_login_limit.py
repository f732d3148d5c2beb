"""The local Superset limits logins per client address (AUTH_RATE_LIMIT, 10 per minute): wrong passwords on the
JWT login API and POSTs to the login form get HTTP 429 past the limit, the right password too while it holds,
and logins work again once the window has passed.

Runs last among the dashboard tests (file order): it locks the session Superset's logins for up to a minute,
and waits for the lock to end."""

from __future__ import annotations

import re
import time
from typing import Any

import httpx
import pytest

pytestmark = pytest.mark.timeout(300)
LIMIT = 10  # AUTH_RATE_LIMIT in rtfin_cli/local/superset.py


def _api_login(http: httpx.Client, password: str) -> int:
    body = {"username": "admin", "password": password, "provider": "db", "refresh": False}
    return http.post("/api/v1/security/login", json=body).status_code


def test_wrong_passwords_are_rate_limited(superset_server: Any) -> None:
    right = superset_server.admin_password()
    with httpx.Client(base_url=superset_server.url, timeout=30) as http:
        assert _api_login(http, right) == 200  # good logins do not count against the limit
        api = [_api_login(http, f"wrong-{i}") for i in range(LIMIT + 2)]
        assert api == [401] * LIMIT + [429, 429], api
        assert _api_login(http, right) == 429  # locked while the limit holds
        token = re.search(r'id="csrf_token"[^>]*value="([^"]+)"', http.get("/login/").text)
        assert token, "no csrf_token on Superset's login page"
        wrong = [
            {"csrf_token": token.group(1), "username": "admin", "password": f"wrong-{i}"}
            for i in range(LIMIT + 1)
        ]
        form = [http.post("/login/", data=data).status_code for data in wrong]
        assert form[0] != 429 and form[-1] == 429, form
        deadline = time.monotonic() + 90
        while (status := _api_login(http, right)) == 429 and time.monotonic() < deadline:
            time.sleep(3)
        assert status == 200, "logins stay locked after the limit's window"
