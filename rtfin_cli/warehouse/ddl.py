"""Versioned, idempotent DDL for the raw database.

``ddl/NNN_name.sql`` files are Jinja templates (``{{ raw }}`` = clickhouse.raw_database,
``{{ ttl('table') }}`` = the TTL clause from clickhouse.ttl_days). Each file runs once; the table
``<raw>._rtfin_migrations`` records version, name, checksum and time. Every statement is
``IF NOT EXISTS`` as well, so a half-applied file re-runs safely. A changed ``ttl_days`` is
reconciled with ``ALTER TABLE ... MODIFY TTL`` / ``REMOVE TTL``.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rtfin_cli.errors import RtfinError
from rtfin_cli.settings import ClickHouseSettings
from rtfin_cli.warehouse.client import errors, translate, where

if TYPE_CHECKING:
    from clickhouse_connect.driver.client import Client

DDL_DIR = Path(__file__).with_name("ddl")
MIGRATIONS_TABLE = "_rtfin_migrations"
# The event-time expression each raw table's TTL counts from.
TTL_EXPR = {
    "news": "toDateTime(published_utc)",
    "stock_aggs": "fromUnixTimestamp64Milli(s, 'UTC')",
    "news_sentiment": "toDateTime(published_utc)",
}
_NAME = re.compile(r"^(\d{3})_([a-z0-9_]+)\.sql$")


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    template: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.template.encode()).hexdigest()[:16]

    def statements(self, ch: ClickHouseSettings) -> list[str]:
        return split_sql(render(self.template, ch))


@dataclass
class DdlResult:
    applied: list[str] = field(default_factory=list)
    already: list[str] = field(default_factory=list)
    altered: list[str] = field(default_factory=list)
    statements: list[str] = field(default_factory=list)
    dry_run: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in ("applied", "already", "altered", "statements", "dry_run")}


def ttl_clause(ch: ClickHouseSettings, table: str) -> str:
    return f"TTL {TTL_EXPR[table]} + INTERVAL {ch.ttl_days} DAY" if ch.ttl_days else ""


def render(template: str, ch: ClickHouseSettings, **extra: Any) -> str:
    import jinja2

    env = jinja2.Environment(undefined=jinja2.StrictUndefined, autoescape=False)
    return env.from_string(template).render(
        raw=ident(ch.raw_database), database=ident(ch.database), ttl=lambda t: ttl_clause(ch, t), **extra
    )


def ident(name: str) -> str:
    """A database/table name, checked to be a plain identifier (settings flow into SQL text)."""
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
        raise RtfinError(
            f"invalid ClickHouse identifier {name!r}", "Use letters, digits and underscores only."
        )
    return name


def split_sql(sql: str) -> list[str]:
    """Statements of a script: full-line ``--`` comments dropped, split on ``;`` at line end."""
    body = "\n".join(line for line in sql.splitlines() if not line.lstrip().startswith("--"))
    return [s.strip() for s in re.split(r";[ \t]*(?:\n|$)", body) if s.strip()]


def migrations() -> list[Migration]:
    out = []
    for path in sorted(DDL_DIR.glob("*.sql")):
        m = _NAME.match(path.name)
        if m:
            out.append(Migration(int(m.group(1)), m.group(2), path.read_text(encoding="utf-8")))
    return out


def _bootstrap(client: Client, ch: ClickHouseSettings) -> None:
    raw = ident(ch.raw_database)
    client.command(f"CREATE DATABASE IF NOT EXISTS {raw}")
    client.command(
        f"CREATE TABLE IF NOT EXISTS {raw}.{MIGRATIONS_TABLE} (version UInt32, name String, checksum String, "
        "applied_at DateTime64(3, 'UTC') DEFAULT now64(3)) ENGINE = ReplacingMergeTree ORDER BY version"
    )


def applied_migrations(client: Client, ch: ClickHouseSettings) -> dict[int, tuple[str, str]]:
    """{version: (name, checksum)} of migrations recorded on the server."""
    rows = client.query(
        f"SELECT version, name, checksum FROM {ident(ch.raw_database)}.{MIGRATIONS_TABLE} FINAL"
    ).result_rows
    return {int(v): (str(n), str(c)) for v, n, c in rows}


def _ttl_changes(client: Client, ch: ClickHouseSettings) -> list[str]:
    raw = ident(ch.raw_database)
    rows = client.query(
        "SELECT name, engine_full FROM system.tables WHERE database = {db:String}", parameters={"db": raw}
    ).result_rows
    out = []
    for name, engine_full in rows:
        if name not in TTL_EXPR:
            continue
        current = re.search(r"toIntervalDay\((\d+)\)", engine_full) if " TTL " in engine_full else None
        days = int(current.group(1)) if current else 0
        if days != ch.ttl_days:
            out.append(
                f"ALTER TABLE {raw}.{name} MODIFY {ttl_clause(ch, name)}"
                if ch.ttl_days
                else f"ALTER TABLE {raw}.{name} REMOVE TTL"
            )
    return out


def apply(ch: ClickHouseSettings, client: Client | None = None, dry_run: bool = False) -> DdlResult:
    """Apply pending migrations (or, with dry_run, only render them — no server needed)."""
    result = DdlResult(dry_run=dry_run)
    if dry_run:
        for m in migrations():
            result.statements.extend(m.statements(ch))
            result.applied.append(f"{m.version:03d}_{m.name}")
        return result
    if client is None:
        from rtfin_cli.warehouse.client import get_client

        client = get_client(ch)
    with errors(ch, "preparing the migrations table"):
        _bootstrap(client, ch)
        done = applied_migrations(client, ch)
    for m in migrations():
        label = f"{m.version:03d}_{m.name}"
        if m.version in done:
            if done[m.version][1] != m.checksum:
                raise RtfinError(
                    f"migration {label} was changed after it was applied on {where(ch)}",
                    "Never edit an applied migration: add a new NNN_*.sql file instead.",
                )
            result.already.append(label)
            continue
        result.statements += _apply_migration(client, ch, m, label)
        result.applied.append(label)
    with errors(ch, "reconciling TTL"):
        for stmt in _ttl_changes(client, ch):
            client.command(stmt, settings={"materialize_ttl_after_modify": 0})
            result.altered.append(stmt)
    return result


def _apply_migration(client: Client, ch: ClickHouseSettings, m: Migration, label: str) -> list[str]:
    """Run one migration's statements, then record it; returns the statements run."""
    from clickhouse_connect.driver.exceptions import ClickHouseError

    done = []
    for stmt in m.statements(ch):
        try:
            client.command(stmt)
        except ClickHouseError as exc:
            err = translate(exc, ch, f"applying migration {label}")
            raise type(err)(
                err.message, err.hint or "Fix the SQL file; nothing after it was applied."
            ) from exc
        done.append(stmt)
    with errors(ch, f"recording migration {label}"):
        client.insert(
            f"{ident(ch.raw_database)}.{MIGRATIONS_TABLE}",
            [[m.version, m.name, m.checksum]],
            column_names=["version", "name", "checksum"],
        )
    return done


def status(ch: ClickHouseSettings, client: Client) -> dict[str, Any]:
    """Applied and pending migrations and raw table row counts."""
    with errors(ch, "reading the warehouse status"):
        _bootstrap(client, ch)
        done = applied_migrations(client, ch)
        counts: dict[str, Any] = dict(
            client.query(  # type: ignore[arg-type]
                "SELECT name, total_rows FROM system.tables "
                "WHERE database = {db:String} AND name IN {t:Array(String)}",
                parameters={"db": ch.raw_database, "t": list(TTL_EXPR)},
            ).result_rows
        )
    all_m = migrations()
    return {
        "applied": [f"{v:03d}_{n}" for v, (n, _) in sorted(done.items())],
        "pending": [f"{m.version:03d}_{m.name}" for m in all_m if m.version not in done],
        "raw_rows": {t: int(counts.get(t) or 0) for t in TTL_EXPR},
    }
