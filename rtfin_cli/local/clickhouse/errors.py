"""ClickHouse-style errors: ``Code: N. DB::Exception: message. (NAME) (version V)`` with an HTTP status."""

from __future__ import annotations

import re

# The ClickHouse error codes this server raises itself (the engine's own errors keep their codes).
CODES = {
    "UNKNOWN_FORMAT": 73,
    "CANNOT_PARSE_INPUT_ASSERTION_FAILED": 27,
    "SYNTAX_ERROR": 62,
    "UNKNOWN_DATABASE": 81,
    "UNKNOWN_SETTING": 115,
    "READONLY": 164,
    "UNKNOWN_COMPRESSION_METHOD": 638,
    "CANNOT_DECOMPRESS": 271,
    "SESSION_NOT_FOUND": 372,
    "SESSION_IS_LOCKED": 373,
    "HTTP_LENGTH_REQUIRED": 381,
    "REQUIRED_PASSWORD": 194,
    "AUTHENTICATION_FAILED": 516,
    "TOO_LARGE_REQUEST_BODY": 1001,  # not a ClickHouse code: the server's own body limit
    "UNKNOWN_EXCEPTION": 1002,
    "BAD_REQUEST_PARAMETER": 457,
    "TIMEOUT_EXCEEDED": 159,
    "NOT_IMPLEMENTED": 48,
    "BAD_ARGUMENTS": 36,
    "CANNOT_READ_ALL_DATA": 33,
}
_ENGINE_ERROR = re.compile(
    r"Code: (\d+)\. DB::Exception: (.*?)(?:\. \(([A-Z0-9_]+)\))?(?: \(version [^)]*\))?\s*$", re.S
)


class CHError(Exception):
    """An error to send to the client the way ClickHouse does."""

    def __init__(self, name: str, message: str, code: int | None = None, status: int = 500) -> None:
        super().__init__(message)
        self.name = name
        self.message = message
        self.code = code if code is not None else CODES.get(name, CODES["UNKNOWN_EXCEPTION"])
        self.status = status

    def body(self, version: str) -> str:
        message = self.message.rstrip(".")
        return f"Code: {self.code}. DB::Exception: {message}. ({self.name}) (version {version})\n"


def from_engine(exc: BaseException) -> CHError:
    """Translate a chDB exception (its text carries the ClickHouse code and name) into a CHError."""
    text = str(exc)
    start = text.find("Code: ")
    match = _ENGINE_ERROR.match(text[start:]) if start >= 0 else None
    if match is None:
        return CHError("UNKNOWN_EXCEPTION", text.strip() or type(exc).__name__)
    code, message, name = int(match.group(1)), match.group(2).strip(), match.group(3) or "UNKNOWN_EXCEPTION"
    return CHError(name, message, code, status=_status_for(name))


def is_fatal(exc: CHError) -> bool:
    """True when the engine says it is shutting down (every later query on any connection would fail the
    same way, ``Code: 236 ... fatal error``): only a restart of the process recovers."""
    return exc.code == 236 and "fatal" in exc.message.lower()


def _status_for(name: str) -> int:
    if name in ("UNKNOWN_DATABASE", "UNKNOWN_TABLE"):
        return 404
    if name in ("SYNTAX_ERROR", "UNKNOWN_IDENTIFIER", "UNKNOWN_SETTING", "UNKNOWN_QUERY_PARAMETER"):
        return 400
    if name.startswith("CANNOT_PARSE") or name in ("INCORRECT_DATA", "TYPE_MISMATCH"):
        return 400
    return 500
