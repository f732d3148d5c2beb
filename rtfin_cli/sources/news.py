"""Polygon/Massive news REST client: ``/v2/reference/news``, cursor pagination, backoff, clear auth errors."""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Iterator
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import urlsplit

from rtfin_cli.errors import AuthError, ConfigError, DataError, ServiceUnavailable
from rtfin_cli.settings import secret
from rtfin_cli.sources.records import iso_ms

if TYPE_CHECKING:
    import httpx

    from rtfin_cli.settings import PolygonSettings

log = logging.getLogger("rtfin.sources.news")
LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")
LOCAL_KEY = "rtfin-local"  # the replay server accepts any key; sent when none is configured for a local URL
KEY_HINT = (
    "Check the POLYGON api key: set polygon.api_key in rtfin.toml or RTFIN__POLYGON__API_KEY in the env."
)


def api_key(polygon: PolygonSettings, url: str) -> str:
    """The configured key, a placeholder for a local replay server, or a ConfigError."""
    key = secret(polygon.api_key)
    if key:
        return key
    if (urlsplit(url).hostname or "") in LOCAL_HOSTS:
        return LOCAL_KEY
    raise ConfigError(f"polygon.api_key is not set (needed for {urlsplit(url).hostname})", KEY_HINT)


def backoff_delay(
    attempt: int, retry_after: float | None = None, base: float = 0.5, cap: float = 30.0
) -> float:
    """The server's Retry-After (plus up to 20% jitter) when given, else exponential backoff with jitter."""
    if retry_after is not None:
        return min(cap * 4, retry_after) * random.uniform(1.0, 1.2)
    return random.uniform(base, min(cap, base * 2**attempt))


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        try:
            import time

            return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
        except (TypeError, ValueError):
            return None


class _Counted(Protocol):
    requests: int
    retries: int


def get_retrying(
    owner: _Counted, http: httpx.Client, url: str, params: dict[str, Any] | None, *, api: str, base: str,
    max_retries: int, stop: threading.Event, rejected: str, hint: str,
) -> httpx.Response | None:  # fmt: skip
    """GET ``url`` until HTTP 200, as the Massive REST endpoints want it: 429, 5xx and transport errors back
    off (Retry-After honoured, else exponential with jitter) up to ``max_retries``; 401/403 is an AuthError,
    any other 4xx final. None when ``stop`` is set while waiting; ``owner`` counts requests and retries."""
    import httpx

    attempt = blind = 0  # retries so far; of those, without a Retry-After (they grow the backoff)
    while True:
        owner.requests += 1
        try:
            resp = http.get(url, params=params)
        except httpx.TransportError as exc:
            status, reason, retry_after = 0, f"{type(exc).__name__}: {exc}", None
        else:
            status = resp.status_code
            if status == 200:
                return resp
            detail = f"HTTP {status}: {message(resp)}"
            if status in (401, 403):
                raise AuthError(f"{api} at {base} refused the API key ({detail})", KEY_HINT)
            if status != 429 and status < 500:
                raise ServiceUnavailable(f"{api} at {base} rejected {rejected} ({detail})", hint)
            reason, retry_after = f"HTTP {status}", _retry_after(resp.headers.get("Retry-After"))
        if attempt >= max_retries:
            raise ServiceUnavailable(
                f"{api} at {base} still failing after {attempt} retries ({reason})",
                "Check the service and polygon.rest_url; raise polygon.max_retries to wait longer.",
            )
        delay = backoff_delay(blind, retry_after)
        blind += retry_after is None
        log.warning("%s %s; retry %d/%d in %.1fs", api, reason, attempt + 1, max_retries, delay)
        owner.retries += 1
        attempt += 1
        if stop.wait(delay):
            return None


def message(resp: httpx.Response) -> str:
    """The error text of an API response (its error, message or status field), else the HTTP reason."""
    try:
        body = resp.json()
        return str(body.get("error") or body.get("message") or body.get("status"))
    except (ValueError, AttributeError):
        return resp.reason_phrase or "no detail"


class NewsClient:
    """Pages of raw articles in ascending ``published_utc`` order from a cursor."""

    def __init__(self, polygon: PolygonSettings, stop: threading.Event | None = None) -> None:
        import httpx

        self.polygon = polygon
        self.base = polygon.rest_url.rstrip("/")
        self.stop = stop or threading.Event()
        self.requests = 0
        self.retries = 0
        self._http = httpx.Client(
            timeout=polygon.timeout_s,
            headers={"Authorization": f"Bearer {api_key(polygon, self.base)}", "User-Agent": "rtfin"},
            follow_redirects=True,
        )

    def close(self) -> None:
        self._http.close()

    def pages(self, gte_ms: int, lt_ms: int | None = None, ticker: str | None = None) -> Iterator[list[Any]]:
        """Every page of articles with gte_ms <= published_utc < lt_ms, oldest first, following next_url."""
        params: dict[str, Any] | None = {
            "published_utc.gte": iso_ms(gte_ms),
            "order": "asc",
            "sort": "published_utc",
            "limit": self.polygon.news_limit,
        }
        assert params is not None
        if lt_ms is not None:
            params["published_utc.lt"] = iso_ms(lt_ms)
        if ticker:
            params["ticker"] = ticker
        url: str | None = f"{self.base}/v2/reference/news"
        while url is not None and not self.stop.is_set():
            body = self._get(url, params)
            results = body.get("results") or []
            if not isinstance(results, list):
                raise DataError(f"news API returned a non-list 'results' from {self.base}")
            yield results
            url, params = body.get("next_url"), None  # next_url carries the query in its cursor

    def _get(self, url: str, params: dict[str, Any] | None) -> dict[str, Any]:
        resp = get_retrying(
            self, self._http, url, params, api="news API", base=self.base, max_retries=self.polygon.max_retries,
            stop=self.stop, rejected="the request", hint="Check polygon.rest_url and the --since/--until/--tickers options.",
        )  # fmt: skip
        return {"results": []} if resp is None else self._json(resp)

    def _json(self, resp: httpx.Response) -> dict[str, Any]:
        try:
            body = resp.json()
        except ValueError:
            raise DataError(
                f"news API at {self.base} returned invalid JSON (HTTP {resp.status_code})"
            ) from None
        if not isinstance(body, dict):
            raise DataError(f"news API at {self.base} returned {type(body).__name__}, expected an object")
        return body
