"""The Preset path of the dashboard client against the strict fake of Preset's token exchange and a
workspace API (tests/fakes/preset_api.py, derived from preset-cli's auth): an expired access token is
renewed once and the call sent again; a refused secret or a token refused again is an AuthError."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from rtfin_cli.dashboard.sync import connect
from rtfin_cli.errors import AuthError
from rtfin_cli.settings import RtfinSettings
from tests.fakes import preset_api
from tests.fakes.preset_api import SECRET, TOKEN, FakePreset


@pytest.fixture()
def preset() -> Iterator[FakePreset]:
    with preset_api.running() as srv:
        yield srv


def _settings(preset: FakePreset, api_secret: str = SECRET) -> RtfinSettings:
    return RtfinSettings(
        dashboard={
            "backend": "preset",
            "preset_workspace": preset.url,
            "preset_api_url": preset.url,
            "preset_api_token": TOKEN,
            "preset_api_secret": api_secret,
        }  # fmt: skip
    )


def test_an_expired_token_is_renewed_once_and_the_call_sent_again(preset: FakePreset) -> None:
    preset.token_uses = 2  # the CSRF fetch and one call, then the token expires
    client = connect(_settings(preset), "preset")
    assert client.dashboard(1) == {"id": 1, "dashboard_title": "rtfin", "slug": "rtfin"}
    assert preset.auth_calls == 1
    assert client.dashboard(1) is not None  # answered 401 "Token has expired", renewed, resent
    assert preset.auth_calls == 2
    statuses = [(m, p, s) for m, p, s in preset.requests if p.startswith("/api/v1/dashboard/")]
    assert [s for _, _, s in statuses] == [200, 401, 200]
    client.close()


def test_a_token_refused_again_after_renewal_is_an_auth_error(preset: FakePreset) -> None:
    preset.token_uses = 1  # every new token is spent on its CSRF fetch
    client = connect(_settings(preset), "preset")
    with pytest.raises(AuthError):
        client.get_json("/api/v1/dashboard/1", "reading the dashboard")
    assert preset.auth_calls == 2  # one renewal, no loop
    client.close()


def test_a_refused_api_secret_is_an_auth_error_without_the_secret(preset: FakePreset) -> None:
    with pytest.raises(AuthError) as err:
        connect(_settings(preset, api_secret="wrong-secret-value"), "preset")
    assert "preset_api_secret" in err.value.hint and "wrong-secret-value" not in err.value.message
