"""News client policy: API key resolution, backoff, Retry-After, subscriptions."""

from __future__ import annotations

import pytest
from pydantic import SecretStr

from rtfin_cli.errors import ConfigError, UsageError
from rtfin_cli.settings import PolygonSettings
from rtfin_cli.sources.news import LOCAL_KEY, _retry_after, api_key, backoff_delay
from rtfin_cli.sources.stocks import subscriptions


def test_api_key_placeholder_only_for_local_urls() -> None:
    assert api_key(PolygonSettings(), "http://127.0.0.1:8765") == LOCAL_KEY
    assert api_key(PolygonSettings(api_key=SecretStr("k")), "https://api.massive.com") == "k"
    with pytest.raises(ConfigError, match="polygon.api_key") as exc:
        api_key(PolygonSettings(), "wss://socket.massive.com/stocks")
    assert "RTFIN__POLYGON__API_KEY" in exc.value.hint


def test_backoff_grows_with_jitter_and_follows_retry_after() -> None:
    for attempt in range(10):
        d = backoff_delay(attempt)
        assert 0.5 <= d <= min(30.0, 0.5 * 2**attempt)
    assert max(backoff_delay(6) for _ in range(50)) > 4
    assert 2.0 <= backoff_delay(0, retry_after=2.0) <= 2.4


def test_retry_after_seconds_or_date() -> None:
    assert _retry_after("3") == 3.0 and _retry_after(None) is None and _retry_after("nonsense") is None
    assert _retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # in the past


def test_subscriptions() -> None:
    assert subscriptions(None, ["AM"]) == ["AM.*"]
    assert subscriptions(["AAPL", "MSFT"], ["AM", "A"]) == ["AM.AAPL", "AM.MSFT", "A.AAPL", "A.MSFT"]
    with pytest.raises(UsageError):
        subscriptions(None, ["T"])
