"""The one error hierarchy: every failure a user can act on is an RtfinError with an exit code and a hint."""

from __future__ import annotations


class RtfinError(Exception):
    """Base error: one line of message, one line of hint, an exit code."""

    exit_code: int = 1
    default_hint: str = ""

    def __init__(self, message: str, hint: str | None = None, exit_code: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint if hint is not None else self.default_hint
        if exit_code is not None:
            self.exit_code = exit_code

    def __str__(self) -> str:
        return self.message


class UsageError(RtfinError):
    """Bad arguments or input given on the command line."""

    exit_code = 2


class ConfigError(RtfinError):
    """rtfin.toml, a profile or an environment variable is wrong."""

    exit_code = 3
    default_hint = "Fix the named key (see rtfin.example.toml), or run `rtfin config show`."


class ServiceUnavailable(RtfinError):
    """A service (Kafka, ClickHouse, Superset, ...) cannot be reached."""

    exit_code = 4


class AuthError(RtfinError):
    """Credentials were refused by a service."""

    exit_code = 5


class DataError(RtfinError):
    """Input data that cannot be processed (malformed file, record, asset)."""

    exit_code = 6


class ProcessError(RtfinError):
    """A local process (broker, server, job) failed to start, stop or finish."""

    exit_code = 7


class ThresholdExceeded(RtfinError):
    """A health check threshold (lag, age) was exceeded."""

    exit_code = 8
