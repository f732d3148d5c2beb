"""One chDB instance, many connections: a pool for session-less requests, one connection per HTTP session.

chDB allows one process per data directory; within it, each chDB connection has its own session
context (current database, settings, temporary tables), so an HTTP ``session_id`` maps onto one
connection and session-less requests borrow a clean one from a pool. Queries on different
connections run concurrently (chDB releases the GIL); a session runs one query at a time, like
ClickHouse: a second request while one runs fails at once with SESSION_IS_LOCKED (one sent after the
previous answer arrived waits the moment that request takes to wind up). The ``database``
parameter applies to its request only; a session keeps the database its own ``USE`` chose.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import threading
import time
from collections.abc import Callable, Generator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rtfin_cli.local.clickhouse.errors import CHError, from_engine
from rtfin_cli.local.clickhouse.sqltext import InsertSplit, split_settings


@dataclass
class Conn:
    """A chDB connection and the state this server applied to it."""

    raw: Any
    database: str = "default"  # the connection's current database
    session_database: str = "default"  # what the session's own USE chose (a request's database is its own)
    settings: dict[str, str] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    last_used: float = field(default_factory=time.monotonic)
    timeout_s: float = 60.0
    finishing: bool = False  # its query has produced all its output; the request is only being wound up


def _acquire(conn: Conn) -> bool:
    """Take a session's connection: at once, or after the wind-up of a request whose query has finished.

    The client may read the whole answer and send its next query before the server has released the
    session; that next query is sequential, not concurrent, and must not get SESSION_IS_LOCKED."""
    return conn.lock.acquire(blocking=False) or (conn.finishing and conn.lock.acquire(timeout=10))


def quote(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


class Engine:
    """The chDB side of the server. Thread-safe."""

    def __init__(self, path: Path, max_sessions: int = 256) -> None:
        import chdb

        engine: Any = chdb._chdb  # the engine's own connection API (query, send_query, send_insert)
        self.path = Path(path)
        self.path.mkdir(parents=True, exist_ok=True)
        self._connect: Callable[[], Any] = lambda: engine.connect(str(self.path))
        self._main = self._connect()  # holds the instance open for the server's lifetime
        self.version = self.scalar("SELECT version()")
        self.timezone = self.scalar("SELECT timezone()")
        self._pool: list[Conn] = []
        self._sessions: dict[str, Conn] = {}
        self._lock = threading.Lock()
        self.max_sessions = max_sessions
        self.closed = False

    def scalar(self, sql: str) -> str:
        return bytes(self._main.query(sql, "TabSeparatedRaw", params={}).bytes()).decode().rstrip("\n")

    def probe(self) -> None:
        """A real query on a pooled connection (what a client would get); CHError when the engine fails it."""
        try:
            with self.connection(None, None, {}) as conn:
                conn.raw.query("SELECT 1", "TabSeparated", params={})
        except CHError:
            raise
        except Exception as exc:  # noqa: BLE001 - chDB raises plain RuntimeErrors with the ClickHouse text
            raise from_engine(exc) from None

    # -- connections -----------------------------------------------------------------------------
    @contextmanager
    def connection(
        self,
        session_id: str | None,
        database: str | None,
        settings: dict[str, str],
        session_timeout: float = 60.0,
        session_check: bool = False,
    ) -> Iterator[Conn]:
        """A connection prepared for one request: its database selected and URL settings applied.

        ``session_check``: the session must exist already (SESSION_NOT_FOUND otherwise)."""
        if session_id and session_check and session_id not in self._sessions:
            raise CHError("SESSION_NOT_FOUND", f"Session {session_id} not found")
        conn = self._session(session_id, session_timeout) if session_id else self._borrow()
        if session_id and not _acquire(conn):
            raise CHError("SESSION_IS_LOCKED", f"Session {session_id} is locked by a concurrent client")
        conn.finishing = False
        keep = True
        try:
            self._prepare(conn, database, settings, bool(session_id))
            yield conn
        except BaseException:
            keep = bool(session_id)  # a pooled connection that failed mid-way is not reused
            raise
        finally:
            conn.last_used = time.monotonic()
            if session_id:
                conn.lock.release()
            elif keep and not self.closed:
                with self._lock:
                    self._pool.append(conn)
            else:
                conn.raw.close()

    def _borrow(self) -> Conn:
        with self._lock:
            if self._pool:
                return self._pool.pop()
        return Conn(self._connect())

    def _session(self, session_id: str, timeout: float) -> Conn:
        with self._lock:
            conn = self._sessions.get(session_id)
            if conn is None:
                if len(self._sessions) >= self.max_sessions:
                    self._expire_locked(force_oldest=True)
                conn = self._sessions[session_id] = Conn(self._connect(), timeout_s=timeout)
            conn.timeout_s, conn.last_used = timeout, time.monotonic()
            return conn

    def session_changed(self, conn: Conn) -> None:
        """A session's statement changed its state (SET, USE): its settings and database are its own now."""
        conn.settings.clear()
        res = conn.raw.query("SELECT currentDatabase()", "TabSeparatedRaw", params={})
        conn.database = conn.session_database = bytes(res.bytes()).decode().strip()

    def forget(self, conn: Conn) -> None:
        """Renew a pooled connection whose state changed (SET/USE/temporary table outside a session)."""
        conn.settings = {"__dirty__": "1"}

    def _prepare(self, conn: Conn, database: str | None, settings: dict[str, str], session: bool) -> None:
        try:
            if "__dirty__" in conn.settings:
                conn.raw.close()
                conn.raw, conn.settings, conn.database = self._connect(), {}, "default"
            target = database or (conn.session_database if session else "default")
            if target is not None and conn.database != target:
                conn.raw.query(f"USE `{target.replace('`', '``')}`", "TabSeparated", params={})
                conn.database = target
            for name in [n for n in conn.settings if n not in settings]:
                conn.raw.query(f"SET {name} = DEFAULT", "TabSeparated", params={})
                del conn.settings[name]
            for name, value in settings.items():
                if conn.settings.get(name) != value:
                    conn.raw.query(f"SET {name} = {quote(value)}", "TabSeparated", params={})
                    conn.settings[name] = value
        except CHError:
            raise
        except Exception as exc:  # noqa: BLE001 - chDB raises plain RuntimeErrors with the ClickHouse text
            raise from_engine(exc) from None

    def expire_sessions(self) -> int:
        with self._lock:
            return self._expire_locked()

    def _expire_locked(self, force_oldest: bool = False) -> int:
        now = time.monotonic()
        stale = [
            sid
            for sid, c in self._sessions.items()
            if now - c.last_used > c.timeout_s and not c.lock.locked()
        ]
        idle = [sid for sid, c in self._sessions.items() if not c.lock.locked()]
        if force_oldest and not stale and idle:  # never evict a session that is running a query
            stale = [min(idle, key=lambda s: self._sessions[s].last_used)]
        for sid in stale:
            self._sessions.pop(sid).raw.close()
        return len(stale)

    def close(self) -> None:
        """Close every connection (flushes the engine's state to disk)."""
        self.closed = True
        with self._lock:
            for conn in [*self._pool, *self._sessions.values()]:
                with contextlib.suppress(Exception):
                    conn.raw.close()
            self._pool.clear()
            self._sessions.clear()
        self._main.close()


SLICE = 1 << 20  # a whole (non-streamed) result goes out in slices of this size


@dataclass
class Stats:
    """What X-ClickHouse-Summary reports."""

    read_rows: int = 0
    read_bytes: int = 0
    written_rows: int = 0
    written_bytes: int = 0
    result_rows: int = 0
    result_bytes: int = 0
    elapsed_s: float = 0.0

    def header(self) -> str:
        import json

        return json.dumps({
            "read_rows": str(self.read_rows), "read_bytes": str(self.read_bytes),
            "written_rows": str(self.written_rows), "written_bytes": str(self.written_bytes),
            "total_rows_to_read": str(self.read_rows), "result_rows": str(self.result_rows),
            "result_bytes": str(self.result_bytes), "elapsed_ns": str(int(self.elapsed_s * 1e9)),
        }, separators=(",", ":"))  # fmt: skip


def _count(stats: Stats, res: Any) -> None:
    stats.read_rows += res.rows_read()
    stats.read_bytes += res.bytes_read()
    stats.written_rows += res.rows_written()
    stats.written_bytes += res.bytes_written()


def run(
    conn: Conn,
    sql: str,
    fmt: str,
    params: dict[str, str],
    stream: bool,
    stats: Stats,
) -> Generator[bytes | memoryview, None, None]:
    """Execute one statement; yields the output in ``fmt`` chunk by chunk (SELECTs stream).

    The caller closes the generator before it releases ``conn``: that cancels a stream the client left
    (cancelling on a closed connection hangs the engine). The caller pulls the first chunk before
    answering, so errors before any output still become a proper HTTP error response. An empty result
    has no output at all; in Native that is what ClickHouse sends too (no block of column names).
    """
    t0 = time.monotonic()
    raw = conn.raw
    if not stream:
        try:
            res = raw.query(sql, fmt, params=params)
        except Exception as exc:  # noqa: BLE001
            raise from_engine(exc) from None
        _count(stats, res)
        holder = res.get_memview()  # the engine's buffer, not a copy; sent in slices
        view = holder.view()
        stats.result_bytes, stats.elapsed_s = len(view), time.monotonic() - t0
        for start in range(0, len(view), SLICE):
            yield view[start : start + SLICE]
        return
    try:
        handle = raw.send_query(sql, fmt, params=params)
    except Exception as exc:  # noqa: BLE001
        raise from_engine(exc) from None
    done = False
    try:
        while True:
            try:
                res = raw.streaming_fetch_result(handle)
            except Exception as exc:  # noqa: BLE001
                done = True
                raise from_engine(exc) from None
            if res is None or res.size() == 0:
                done = True
                break
            _count(stats, res)
            data = res.bytes()
            stats.result_bytes += len(data)
            stats.elapsed_s = time.monotonic() - t0
            yield data
    finally:
        if not done:  # the client went away or the caller stopped early
            with contextlib.suppress(Exception):
                raw.streaming_cancel_query(handle)


def insert(
    conn: Conn, split: InsertSplit, chunks: Iterator[bytes], stats: Stats, spool_dir: Path | None = None
) -> None:
    """Insert FORMAT-encoded chunks as ``split`` describes (``INSERT INTO ...`` without FORMAT/data, or an
    ``INSERT ... SELECT ... FROM input(...)``).

    The data is spooled to a file that one ordinary query reads (``FROM INFILE``, or ``file()`` in place of
    ``input()``). Not chDB's streaming insert (send_insert/insert_append/insert_done): that one swallows the
    errors ClickHouse raises while writing the block (a CHECK constraint, too many partitions, ...) and
    reports the block as written, while the rows are dropped.
    """
    t0 = time.monotonic()
    fd, path = tempfile.mkstemp(prefix="rtfin-ch-insert-", suffix=".data", dir=spool_dir)
    try:
        with os.fdopen(fd, "wb") as out:
            for chunk in chunks:
                if chunk:
                    out.write(chunk)
        if split.input_call is not None:
            before, args, after = split.input_call
            args = f", {args}" if args.strip() else ""  # input() without a structure: file() infers it
            sql = f"{before}file({quote(path)}, {quote(split.fmt)}{args}){after}"
        else:
            head, settings = split_settings(split.statement)  # SETTINGS must follow FROM INFILE
            sql = f"{head} FROM INFILE {quote(path)} COMPRESSION 'none' {settings} FORMAT {split.fmt}"
        try:
            res = conn.raw.query(sql, "TabSeparated", params={})
        except Exception as exc:  # noqa: BLE001
            raise from_engine(exc) from None
    finally:
        with contextlib.suppress(OSError):
            os.unlink(path)
    stats.written_rows, stats.written_bytes = res.rows_written(), res.bytes_written()
    stats.elapsed_s = time.monotonic() - t0
