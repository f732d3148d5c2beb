"""What one HTTP request asks of the endpoint: its options (URL parameters and headers) and its statement.

The statement is the ``query`` parameter, then the body: an INSERT's data (streamed, never held whole),
or more SQL text (bounded by the server's query size). Nothing here touches the engine.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import TypeVar

from rtfin_cli.local.clickhouse import sqltext
from rtfin_cli.local.clickhouse.errors import CHError

T = TypeVar("T", bytes, bytes | memoryview)

# URL parameters the HTTP handler consumes; every other parameter is a setting.
RESERVED = {
    "query", "database", "default_format", "user", "password", "quota_key", "query_id", "session_id",
    "session_timeout", "session_check", "compress", "decompress", "wait_end_of_query", "buffer_size",
    "client_protocol_version", "stacktrace", "role",
    "http_native_compression_disable_checksumming_on_decompress",
}  # fmt: skip
# Settings that only steer the HTTP layer; the engine does not know them.
HTTP_ONLY = {"enable_http_compression", "send_progress_in_http_headers", "http_headers_progress_interval_ms",
             "cancel_http_readonly_queries_on_client_close", "http_zlib_compression_level",
             "http_response_buffer_size", "http_wait_end_of_query", "add_http_cors_header"}  # fmt: skip
_SETTING_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
HEAD_BYTES = 1 << 20  # how much of a body we look at to find an INSERT's FORMAT clause
TRUE = {"1", "true", "True"}


@dataclass(frozen=True)
class Options:
    """The request's URL parameters and headers, sorted into what the handler and the engine need."""

    engine_settings: dict[str, str]
    query_params: dict[str, str]
    database: str | None
    session_id: str | None
    session_timeout: float
    session_check: bool
    wait_end: bool
    compress: bool
    default_format: str | None


def options(
    params: Mapping[str, str], database_header: str | None = None, format_header: str | None = None
) -> Options:
    """Parse the parameters (``param_<name>`` are query parameters, unreserved ones settings); the
    X-ClickHouse-Database / X-ClickHouse-Format headers win over the ``database`` / ``default_format``
    parameters."""
    if params.get("decompress") in TRUE or params.get("compress") in TRUE:
        raise CHError(
            "UNKNOWN_COMPRESSION_METHOD",
            "ClickHouse native block compression (compress/decompress=1) is not supported here; "
            "use HTTP compression (Content-Encoding / enable_http_compression=1)",
        )
    settings, query_params = {}, {}
    for name, value in params.items():
        if name.startswith("param_"):
            query_params[name[6:]] = value
        elif name not in RESERVED:
            if not _SETTING_NAME.match(name):
                raise CHError("UNKNOWN_SETTING", f"Unknown setting '{name}'", status=400)
            settings[name] = value
    return Options(
        engine_settings={k: v for k, v in settings.items() if k not in HTTP_ONLY},
        query_params=query_params,
        database=database_header or params.get("database"),
        session_id=params.get("session_id") or None,
        session_timeout=_seconds(params.get("session_timeout")),
        session_check=params.get("session_check") in TRUE,
        wait_end=params.get("wait_end_of_query") in TRUE,
        compress=settings.get("enable_http_compression") in TRUE,
        default_format=format_header or params.get("default_format"),
    )


def _seconds(value: str | None) -> float:
    try:
        return float(value or 60)
    except ValueError:
        raise CHError(
            "BAD_REQUEST_PARAMETER", "session_timeout must be a number of seconds", status=400
        ) from None


@dataclass
class Statement:
    """The SQL ``text``; for an INSERT with data also its ``split`` and the ``data`` stream."""

    text: bytes
    split: sqltext.InsertSplit | None
    data: Iterator[bytes] | None
    body_done: bool  # False while the body is still being streamed as INSERT data

    def check(self, readonly: bool) -> None:
        """CHError for an empty statement, several statements, or a modifying one over GET."""
        if self.data is None and not self.text.strip():
            raise CHError("SYNTAX_ERROR", "Empty query", status=400)
        sql = self.text if self.split is None else self.text[: self.split.data_offset]
        if (at := sqltext.second_statement(sql)) is not None:
            raise CHError(
                "SYNTAX_ERROR",
                f"Syntax error (Multi-statements are not allowed): failed at position {at + 1}: "
                f"{sql[at : at + 40].decode('utf-8', 'replace')}",
                status=400,
            )
        if readonly and (self.data is not None or sqltext.kind(self.text) not in sqltext.READ_ONLY):
            raise CHError(
                "READONLY",
                "Cannot execute query in readonly mode. For queries over HTTP, method GET implies readonly. "
                "You should use method POST for modifying queries",
            )


def statement(query: bytes, chunks: Iterator[bytes], limit: int) -> Statement:
    """The statement of the ``query`` parameter and the body (SQL beyond ``limit`` bytes is refused)."""
    split = sqltext.split_insert(query) if query else None
    if split is not None and not query[split.data_offset :].strip():
        return Statement(b"", split, chunks, False)  # INSERT ... FORMAT X in the URL, the data in the body
    if query:
        body = read_all(chunks, limit - len(query))
        return _inline(query + b"\n" + body if body else query)
    head = read_upto(chunks, HEAD_BYTES)
    split = sqltext.split_insert(head)
    if split is not None and split.fmt.upper() == "VALUES" and len(head) < HEAD_BYTES:
        return _inline(head)  # the whole body is here: its VALUES expressions can be checked like SQL
    if split is not None:
        return Statement(b"", split, chain(head[split.data_offset :], chunks), False)
    return _inline(head + read_all(chunks, limit - len(head)))


def _inline(text: bytes) -> Statement:
    """SQL text, which may be an INSERT ... VALUES (...) / FORMAT X with its data inline."""
    split = sqltext.split_insert(text)
    data = chain(text[split.data_offset :], iter(())) if split is not None else None
    return Statement(text, split, data, True)


def form_parts(body: bytes, ctype: str) -> tuple[dict[str, str], dict[str, bytes]]:
    """The text fields of a multipart form (clickhouse-connect sends large query parameters so) and its
    file parts by name (external data: see external.py)."""
    from email.parser import BytesParser
    from email.policy import HTTP

    msg = BytesParser(policy=HTTP).parsebytes(b"Content-Type: " + ctype.encode() + b"\r\n\r\n" + body)
    fields, files = {}, {}
    for part in msg.iter_parts():  # type: ignore[attr-defined]
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True)
        if not name or not isinstance(payload, bytes):
            continue
        if part.get_filename():
            files[str(name)] = payload
        else:
            fields[str(name)] = payload.decode("utf-8", "replace")
    return fields, files


def read_upto(chunks: Iterator[bytes], n: int) -> bytes:
    """At least n bytes from a chunk stream (whole chunks), or all of it if shorter."""
    buf = bytearray()
    for chunk in chunks:
        buf += chunk
        if len(buf) >= n:
            break
    return bytes(buf)


def read_all(chunks: Iterator[bytes], limit: int) -> bytes:
    """The rest of a body that is SQL text; 'Max query size exceeded' beyond limit."""
    buf = bytearray()
    for chunk in chunks:
        buf += chunk
        if len(buf) > limit:
            raise CHError(
                "SYNTAX_ERROR",
                "Max query size exceeded: the query text is larger than the server limit "
                "(send large data as INSERT ... FORMAT <format> with the data in the body)",
                status=413,
            )
    return bytes(buf)


def chain(first: T, rest: Iterator[T]) -> Iterator[T]:
    if first:
        yield first
    yield from rest
