"""clickhouse-connect clients built from ClickHouseSettings, with errors that name the host.

Every rtfin stage talks to ClickHouse (Cloud, self-hosted, or the local chDB endpoint) through
this one factory, over HTTP(S).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from rtfin_cli.errors import AuthError, RtfinError, ServiceUnavailable
from rtfin_cli.locate import local_clickhouse_password
from rtfin_cli.settings import ClickHouseSettings, RtfinSettings, secret

if TYPE_CHECKING:
    from clickhouse_connect.driver.client import Client

# ClickHouse error codes meaning "who you are is wrong" (AUTHENTICATION_FAILED, REQUIRED_PASSWORD,
# WRONG_PASSWORD, UNKNOWN_USER, ACCESS_DENIED).
AUTH_CODES = {516, 194, 193, 192, 497}
_UNREACHABLE_HINT = "Start it with `rtfin local clickhouse start`, or check clickhouse.host/port/secure."
_AUTH_HINT = "Check clickhouse.user and the password (RTFIN__CLICKHOUSE__PASSWORD)."


def where(ch: ClickHouseSettings) -> str:
    """``http(s)://host:port`` — how errors name the server (never with credentials)."""
    return f"{'https' if ch.secure else 'http'}://{ch.host}:{ch.port}"


def _ch(settings: RtfinSettings | ClickHouseSettings) -> ClickHouseSettings:
    return settings.clickhouse if isinstance(settings, RtfinSettings) else settings


def password(settings: RtfinSettings | ClickHouseSettings) -> str:
    """The configured password; unset and pointing at this machine, the local endpoint's generated one."""
    value = secret(_ch(settings).password)
    if value or not isinstance(settings, RtfinSettings):
        return value
    local = local_clickhouse_password(
        value, settings.clickhouse.host, settings.local.clickhouse_password_file()
    )
    return local or ""


def error_code(exc: BaseException) -> int | None:
    code = getattr(exc, "code", None)
    if isinstance(code, int):
        return code
    text = str(exc)
    if "Code: " in text:
        digits = text.split("Code: ", 1)[1].split(".", 1)[0].strip()
        return int(digits) if digits.isdigit() else None
    return None


def _reason(text: str) -> str:
    low = text.lower()
    if "refused" in low or "newconnectionerror" in low:
        return "connection refused"
    if "timed out" in low or "timeout" in low:
        return "timed out"
    if "name or service not known" in low or "(caused by name" in low or "getaddrinfo" in low:
        return "unknown host"
    return text[:120]


def translate(exc: BaseException, ch: ClickHouseSettings, doing: str = "") -> RtfinError:
    """Map a clickhouse-connect exception to an RtfinError naming the host."""
    from clickhouse_connect.driver.exceptions import DatabaseError, OperationalError

    code = error_code(exc)
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if code in AUTH_CODES or " 401" in first or "403" in first and "Forbidden" in first:
        return AuthError(f"ClickHouse at {where(ch)} refused user '{ch.user}' (wrong password?)", _AUTH_HINT)
    if isinstance(exc, OperationalError) or not isinstance(exc, DatabaseError):
        return ServiceUnavailable(
            f"ClickHouse at {where(ch)} is unreachable ({_reason(first)})", _UNREACHABLE_HINT
        )
    what = f" while {doing}" if doing else ""
    return RtfinError(f"ClickHouse at {where(ch)} failed{what}: {first[:300]}")


@contextlib.contextmanager
def errors(ch: ClickHouseSettings, doing: str = "") -> Iterator[None]:
    """Re-raise clickhouse-connect errors as RtfinErrors naming the host."""
    from clickhouse_connect.driver.exceptions import ClickHouseError

    try:
        yield
    except ClickHouseError as exc:
        raise translate(exc, ch, doing) from exc


def get_client(
    settings: RtfinSettings | ClickHouseSettings, database: str | None = None, **overrides: Any
) -> Client:
    """A connected clickhouse-connect client (HTTP); ServiceUnavailable/AuthError name the host.

    Pass the whole RtfinSettings to let an unset password fall back to the local endpoint's.
    """
    import clickhouse_connect

    # clickhouse-connect logs a warning for every failed request; the error we raise says it once.
    logging.getLogger("clickhouse_connect").setLevel(logging.ERROR)
    ch = _ch(settings)
    kwargs: dict[str, Any] = {
        "host": ch.host,
        "port": ch.port,
        "username": ch.user,
        "password": password(settings),
        "secure": ch.secure,
        "connect_timeout": ch.connect_timeout_s,
        "send_receive_timeout": max(300.0, ch.connect_timeout_s),
        "autogenerate_session_id": False,
        **overrides,
    }
    if database:
        kwargs["database"] = database
    with errors(ch, "connecting"):
        return clickhouse_connect.get_client(**kwargs)
