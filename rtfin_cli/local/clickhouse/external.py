"""External data for one query (ClickHouse's HTTP interface, "External Data for Query Processing").

Each file part of a multipart form is a temporary table named after the part, there for the one query:
``<name>_structure`` (``id UInt32, s String``) or ``<name>_types`` (``UInt32,String``: columns ``_1``,
``_2``, ...) describe it, ``<name>_format`` says how its data reads (TabSeparated by default). The tables
live on the request's connection and are dropped when the query is done.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from rtfin_cli.local.clickhouse.errors import CHError, from_engine

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass(frozen=True)
class ExternalTable:
    name: str
    structure: str
    fmt: str
    data: bytes

    def create_sql(self) -> str:
        return f"CREATE TEMPORARY TABLE `{self.name}` ({self.structure}) ENGINE = Memory"


def tables(files: dict[str, bytes], params: dict[str, str]) -> list[ExternalTable]:
    """The external tables of the form's files; takes their ``<name>_*`` parameters out of ``params``."""
    out = []
    for name, data in files.items():
        fmt = params.pop(f"{name}_format", "") or "TabSeparated"
        structure = params.pop(f"{name}_structure", "")
        types = params.pop(f"{name}_types", "")
        if not structure and types:
            structure = ", ".join(f"_{i} {t.strip()}" for i, t in enumerate(types.split(","), 1))
        if not _NAME.match(name) or not _NAME.match(fmt):
            raise CHError(
                "BAD_ARGUMENTS", f"Bad external table name or format: {name!r} ({fmt!r})", status=400
            )
        if not structure.strip():
            raise CHError(
                "BAD_ARGUMENTS",
                f"Neither structure nor types have been provided for external table {name}. "
                f"Use fields {name}_structure or {name}_types to do so",
                status=400,
            )
        out.append(ExternalTable(name, structure, fmt, data))
    return out


@contextmanager
def loaded(conn: Any, externals: list[ExternalTable], check: Callable[[bytes], None]) -> Iterator[None]:
    """The tables created and filled on ``conn`` for the duration of the block (``check`` vets each
    CREATE as the request's own SQL is vetted)."""
    created: list[str] = []
    try:
        for table in externals:
            check(table.create_sql().encode())
            _query(conn, table.create_sql())
            created.append(table.name)
            _fill(conn, table)
        yield
    finally:
        for name in created:
            with contextlib.suppress(Exception):
                conn.raw.query(f"DROP TEMPORARY TABLE IF EXISTS `{name}`", "TabSeparated", params={})


def _fill(conn: Any, table: ExternalTable) -> None:
    fd, path = tempfile.mkstemp(prefix="rtfin-ch-external-", suffix=".data")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(table.data)
        _query(conn, f"INSERT INTO `{table.name}` FROM INFILE '{path}' COMPRESSION 'none' FORMAT {table.fmt}")
    finally:
        with contextlib.suppress(OSError):
            os.unlink(path)


def _query(conn: Any, sql: str) -> None:
    try:
        conn.raw.query(sql, "TabSeparated", params={})
    except Exception as exc:  # noqa: BLE001 - chDB raises plain RuntimeErrors with the ClickHouse text
        raise from_engine(exc) from None
