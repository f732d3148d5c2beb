"""The ClickHouse HTTP interface over chDB, as clickhouse-connect, dbt-clickhouse and Superset use it.

Documented behaviour implemented here: query in the ``query`` parameter and/or the POST body; ``database``
(and X-ClickHouse-Database); credentials by basic auth, ``user``/``password`` or X-ClickHouse-User/Key;
``default_format`` and FORMAT clauses; any other parameter is a setting; ``param_<name>`` query parameters;
``session_id``/``session_timeout``; INSERT data in the body in any input format; Content-Encoding on
requests and ``enable_http_compression`` + Accept-Encoding on responses; ``wait_end_of_query``; /ping.
"""

from __future__ import annotations

import base64
import contextlib
import hmac
import io
import logging
import secrets
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from rtfin_cli.local.clickhouse import arrowstream, codecs, external, sqltext
from rtfin_cli.local.clickhouse.confine import Confinement
from rtfin_cli.local.clickhouse.engine import Engine, Stats, insert, run
from rtfin_cli.local.clickhouse.errors import CHError, is_fatal
from rtfin_cli.local.clickhouse.request import (
    Options,
    Statement,
    chain,
    form_parts,
    options,
    read_all,
    statement,
)
from rtfin_cli.local.clickhouse.server import HANGUP, Server, how_hung_up

log = logging.getLogger("rtfin.clickhouse")
CONTENT_TYPES = {
    "TabSeparated": "text/tab-separated-values; charset=UTF-8",
    "TSV": "text/tab-separated-values; charset=UTF-8",
    "CSV": "text/csv; charset=UTF-8; header=absent",
    "CSVWithNames": "text/csv; charset=UTF-8; header=present",
    "JSON": "application/json; charset=UTF-8", "JSONCompact": "application/json; charset=UTF-8",
    "JSONEachRow": "application/x-ndjson; charset=UTF-8",
}  # fmt: skip


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: Server
    server_version = "ClickHouse"
    sys_version = ""
    timeout = 600  # seconds a socket may stay idle (keep-alive) or a client may not read a streamed result
    # TCP_NODELAY: headers and body are separate writes; with Nagle's algorithm the body waits for the
    # client's delayed ACK (40 ms on Linux), a floor under every request on a keep-alive connection.
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - http.server's signature
        pass  # one line per query is logged by _query; never the URL (it may carry a password)

    def do_HEAD(self) -> None:  # noqa: N802
        self._ok_text(b"Ok.\n", head=True)

    def do_GET(self) -> None:  # noqa: N802
        self._dispatch(readonly=True)

    def do_POST(self) -> None:  # noqa: N802
        self._dispatch(readonly=False)

    # -- request -----------------------------------------------------------------------------------
    def _dispatch(self, readonly: bool) -> None:
        url = urlsplit(self.path)
        params = dict(parse_qsl(url.query, keep_blank_values=True))
        path = url.path.rstrip("/") or "/"
        if path in ("/ping", "/replicas_status") or (path == "/" and not params and self.command == "GET"):
            return self._ok_text(b"Ok.\n")
        if path not in ("/", "/query"):
            return self._error(CHError("UNKNOWN_EXCEPTION", f"There is no handler {url.path}", status=404))
        t0 = time.monotonic()
        query_id = params.get("query_id") or str(uuid.uuid4())
        body_done = False
        try:
            self._authenticate(params)
            chunks = self._body()
            ctype = self.headers.get("Content-Type", "")
            files: dict[str, bytes] = {}
            if ctype.startswith("multipart/form-data"):  # (urlencoded bodies are SQL, as `curl -d` sends it)
                fields, files = form_parts(read_all(chunks, self.server.max_query_bytes), ctype)
                params.update(fields)
                chunks = iter(())
            externals = external.tables(files, params)
            with self.server.active():
                body_done = self._query(params, chunks, readonly, query_id, t0, externals)
        except CHError as exc:
            elapsed = time.monotonic() - t0
            log.warning(
                "query %s failed in %.3fs: %s",
                query_id,
                elapsed,
                exc.body(self.server.engine.version).strip(),
            )
            if not body_done and self._body_pending():
                self.close_connection = True
            if is_fatal(exc):
                self.server.engine_failed(exc)
            if not getattr(self, "_headers_sent", False):
                self._error(exc, query_id)
        except HANGUP as exc:
            self._hung_up(query_id, t0, exc)
            if isinstance(exc, codecs.BodyEndedEarly) and not getattr(self, "_headers_sent", False):
                with contextlib.suppress(OSError):  # a client that only half-closed still gets an answer
                    self._error(CHError("CANNOT_READ_ALL_DATA", str(exc), status=400), query_id)
        except Exception as exc:  # noqa: BLE001 - a bug here must not take the server down
            log.exception("query %s: internal error", query_id)
            self.close_connection = True
            if not getattr(self, "_headers_sent", False):
                self._error(CHError("UNKNOWN_EXCEPTION", f"Internal server error: {exc}"), query_id)

    def _hung_up(self, query_id: str, t0: float, exc: BaseException) -> None:
        """The client closed its connection (or stopped reading) mid-request: its query was cancelled
        before its connection went back to the engine; one line, and the connection is done."""
        self.close_connection = True
        log.info("query %s: client hung up after %.3fs (%s); query cancelled", query_id,
                 time.monotonic() - t0, how_hung_up(exc))  # fmt: skip

    def _body_pending(self) -> bool:
        return bool(self.headers.get("Content-Length", "0") not in ("", "0") or self._chunked())

    def _chunked(self) -> bool:
        return "chunked" in self.headers.get("Transfer-Encoding", "").lower()

    def _authenticate(self, params: dict[str, str]) -> None:
        user, password = params.pop("user", None), params.pop("password", None)
        auth = self.headers.get("Authorization", "")
        if auth.lower().startswith("basic "):
            try:
                user, _, password = base64.b64decode(auth[6:].strip()).decode().partition(":")
            except ValueError:
                raise CHError("AUTHENTICATION_FAILED", "Malformed Authorization header", status=403) from None
        user = self.headers.get("X-ClickHouse-User", user) or "default"
        password = self.headers.get("X-ClickHouse-Key", password) or ""
        ok_user = hmac.compare_digest(user.encode(), self.server.user.encode())
        ok_password = hmac.compare_digest(password.encode(), self.server.password.encode())
        if not (ok_user and ok_password):
            if not password:
                raise CHError(
                    "REQUIRED_PASSWORD", f"{user}: Authentication failed: password is required", status=401
                )
            raise CHError(
                "AUTHENTICATION_FAILED",
                f"{user}: Authentication failed: password is incorrect, or there is no user with such name",
                status=403,
            )

    def _body(self) -> Iterator[bytes]:
        length = int(self.headers.get("Content-Length") or 0)
        raw = codecs.raw_body(self.rfile, length, self._chunked(), self.server.max_body_bytes)
        return codecs.decoded(raw, self.headers.get("Content-Encoding", ""), self.server.max_body_bytes)

    def _query(
        self,
        params: dict[str, str],
        chunks: Iterator[bytes],
        readonly: bool,
        query_id: str,
        t0: float,
        externals: list[external.ExternalTable],
    ) -> bool:
        """Run the request's statement and send its response; True once the body was consumed."""
        opts = options(
            params, self.headers.get("X-ClickHouse-Database"), self.headers.get("X-ClickHouse-Format")
        )
        stmt = statement(params.get("query", "").encode(), chunks, self.server.max_query_bytes)
        stmt.check(readonly)
        self.server.confinement.check_statement(stmt.text, stmt.split, opts.engine_settings, stmt.body_done)
        engine = self.server.engine
        with (
            engine.connection(
                opts.session_id, opts.database, opts.engine_settings, opts.session_timeout, opts.session_check
            ) as conn,
            external.loaded(conn, externals, self.server.confinement.check),
        ):
            if stmt.data is not None and stmt.split is not None:
                stats = Stats()
                insert(conn, stmt.split, stmt.data, stats)
                conn.finishing = True
                self._respond(iter(()), stats, query_id, None, compress=False, buffered=True)
                _log_query(query_id, "INSERT", stats.written_rows, stats.written_bytes, time.monotonic() - t0)
                return True
            self._select(conn, stmt, opts, query_id, t0)
        return stmt.body_done

    def _select(self, conn: Any, stmt: Statement, opts: Options, query_id: str, t0: float) -> None:
        """Run a statement that returns output (or none: DDL, SET) and send its result."""
        sql, stats = stmt.text, Stats()
        kind = sqltext.kind(sql)
        fmt = sqltext.output_format(sql) or opts.default_format or "TabSeparated"
        stream = kind in sqltext.STREAMABLE and fmt.lower() in sqltext.STREAMABLE_FORMATS
        output = run(conn, sql.decode("utf-8", "replace"), fmt, opts.query_params, stream, stats)
        try:
            first = next(output, b"")  # errors before any output become a proper error response
            if kind in sqltext.SESSION_STATE or b"TEMPORARY" in sql[:300].upper():
                self._session_changed(conn, opts)
            body = _finishing(conn, chain(first, output))
            if stream and fmt.lower() == "arrowstream":
                body = arrowstream.joined(body)
            named = fmt if kind in sqltext.RESULT_KINDS or first else None  # DDL/SET: no format header
            self._respond(body, stats, query_id, named, opts.compress, buffered=opts.wait_end)
        finally:
            output.close()  # cancels a stream the client left, before its connection is released or closed
        _log_query(query_id, kind, stats.read_rows, stats.result_bytes, time.monotonic() - t0)

    def _session_changed(self, conn: Any, opts: Options) -> None:
        """A statement changed the connection's state (SET, USE, a temporary table)."""
        if opts.session_id:
            self.server.engine.session_changed(conn)
        else:
            self.server.engine.forget(conn)

    # -- response ----------------------------------------------------------------------------------
    def _common_headers(self, query_id: str, fmt: str | None) -> None:
        engine = self.server.engine
        self.send_header("X-ClickHouse-Server-Display-Name", "rtfin-chdb")
        self.send_header("X-ClickHouse-Query-Id", query_id)
        self.send_header("X-ClickHouse-Timezone", engine.timezone)
        if fmt:
            self.send_header("X-ClickHouse-Format", fmt)
            self.send_header("Content-Type", CONTENT_TYPES.get(fmt, "application/octet-stream"))
        else:
            self.send_header("Content-Type", "text/plain; charset=UTF-8")
        self.send_header("Keep-Alive", f"timeout={self.timeout}")

    def _respond(
        self,
        output: Iterator[bytes | memoryview],
        stats: Stats,
        query_id: str,
        fmt: str | None,
        compress: bool,
        buffered: bool,
    ) -> None:
        encoding = codecs.choose_encoding(self.headers.get("Accept-Encoding", "")) if compress else None
        encoder = codecs.Encoder(encoding) if encoding else None
        if buffered:  # the whole result first: errors anywhere still become an error response
            self._respond_whole(output, encoder, encoding, stats, query_id, fmt)
        else:
            self._respond_chunked(output, encoder, encoding, stats, query_id, fmt)

    def _start_response(
        self, stats: Stats, query_id: str, fmt: str | None, encoding: str | None, headers: dict[str, str]
    ) -> None:
        self.send_response(200)
        self._common_headers(query_id, fmt)
        self.send_header("X-ClickHouse-Summary", stats.header())
        for name, value in headers.items():
            self.send_header(name, value)
        if encoding:
            self.send_header("Content-Encoding", encoding)

    def _respond_whole(
        self,
        output: Iterator[bytes | memoryview],
        encoder: codecs.Encoder | None,
        encoding: str | None,
        stats: Stats,
        query_id: str,
        fmt: str | None,
    ) -> None:
        spool = io.BytesIO()
        for chunk in output:
            spool.write(encoder.compress(chunk) if encoder else chunk)
        if encoder:
            spool.write(encoder.flush())
        body = spool.getvalue()
        self._start_response(stats, query_id, fmt, encoding, {})
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self._headers_sent = True
        self.wfile.write(body)

    def _respond_chunked(
        self,
        output: Iterator[bytes | memoryview],
        encoder: codecs.Encoder | None,
        encoding: str | None,
        stats: Stats,
        query_id: str,
        fmt: str | None,
    ) -> None:
        """Stream the result in HTTP chunks; an error mid-stream ends it with ClickHouse's tagged block."""
        tag = secrets.token_hex(8)
        self._start_response(stats, query_id, fmt, encoding, {"X-ClickHouse-Exception-Tag": tag})
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        self._headers_sent = True
        write = self.wfile.write
        try:
            for chunk in output:
                data = encoder.compress(chunk) if encoder else chunk
                if data:
                    write(b"%x\r\n%s\r\n" % (len(data), data))
        except CHError as exc:  # mid-stream: ClickHouse's tagged exception block, then end the response
            log.warning("query %s failed mid-stream: %s", query_id, exc.message)
            if is_fatal(exc):
                self.server.engine_failed(exc)
            msg = exc.body(self.server.engine.version).encode()
            block = b"__exception__\r\n%s\r\n%s%d %s\r\n__exception__\r\n" % (
                tag.encode(),
                msg,
                len(msg),
                tag.encode(),
            )
            data = encoder.compress(block) if encoder else block
            write(b"%x\r\n%s\r\n" % (len(data), data))
            self.close_connection = True
        if encoder:
            tail = encoder.flush()
            if tail:
                write(b"%x\r\n%s\r\n" % (len(tail), tail))
        write(b"0\r\n\r\n")

    def _error(self, exc: CHError, query_id: str = "") -> None:
        body = exc.body(self.server.engine.version).encode()
        self.send_response(exc.status)
        if query_id:
            self.send_header("X-ClickHouse-Query-Id", query_id)
        self.send_header("X-ClickHouse-Exception-Code", str(exc.code))
        self.send_header("Content-Type", "text/plain; charset=UTF-8")
        self.send_header("Content-Length", str(len(body)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        self._headers_sent = True
        if self.command != "HEAD":
            self.wfile.write(body)

    def _ok_text(self, body: bytes, head: bool = False) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=UTF-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if not head:
            self.wfile.write(body)

    def handle_one_request(self) -> None:
        self._headers_sent = False
        super().handle_one_request()


SLOW_QUERY_S = 1.0


def _finishing(conn: Any, body: Iterator[bytes | memoryview]) -> Iterator[bytes | memoryview]:
    """The body, marking the connection as winding up once the query has produced all of it."""
    yield from body
    conn.finishing = True


def _log_query(query_id: str, kind: str, rows: int, nbytes: int, elapsed: float) -> None:
    """One line per query: INFO when slow, DEBUG otherwise (``--log-level DEBUG`` shows all)."""
    level = logging.INFO if elapsed >= SLOW_QUERY_S else logging.DEBUG
    log.log(level, "query %s: %s %s rows, %s bytes in %.3fs", query_id, kind, rows, nbytes, elapsed)


def make_server(
    address: tuple[str, int], engine: Engine, user: str, password: str, confinement: Confinement | None = None,
    **limits: int,
) -> Server:  # fmt: skip
    """The endpoint's HTTP server on ``address`` (limits: ``max_body_bytes``, ``max_query_bytes``)."""
    return Server(address, Handler, engine, user, password, confinement=confinement, **limits)
