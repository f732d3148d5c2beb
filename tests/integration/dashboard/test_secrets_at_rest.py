"""Secrets at rest in the local stack: after a real `rtfin dashboard sync` (which sends the ClickHouse password
to Superset's import API) and a login, no file the local Superset and ClickHouse endpoint wrote (their sqlite
metadata database included) holds a generated secret, except that secret's own file; every file is owner-only.

Lives beside the dashboard tests because it needs their session Superset (one per test session)."""

from __future__ import annotations

import sqlite3
import stat
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import run_cli
from tests.integration.dashboard.conftest import make_env

pytestmark = pytest.mark.timeout(600)


@pytest.fixture(scope="module")
def after_sync(
    superset_server: Any, clickhouse_server: Any, tmp_path_factory: pytest.TempPathFactory
) -> None:
    env = make_env(superset_server, clickhouse_server)
    out = run_cli("dashboard", "sync", "--json", env=env, cwd=tmp_path_factory.mktemp("sync-secrets"))
    assert out.returncode == 0, out.stderr


def _secrets(superset_server: Any, clickhouse_server: Any) -> dict[str, Path]:
    """Each generated secret and the one file allowed to hold it."""
    from rtfin_cli.local.clickhouse.credentials import password_path

    home = superset_server.home
    found = {
        superset_server.admin_password(): superset_server.password_file,
        (home / "secret_key").read_text().strip(): home / "secret_key",
        clickhouse_server.password: password_path(clickhouse_server.data_dir),
    }
    assert all(found) and len(found) == 3
    return found


def _files(*roots: Path) -> list[Path]:
    return sorted(p for root in roots for p in root.rglob("*") if p.is_file())


def _dirs(*roots: Path) -> list[Path]:
    return sorted(p for root in roots for p in root.rglob("*") if p.is_dir())


def test_import_is_in_the_action_log_without_its_password(
    after_sync: None, superset_server: Any, clickhouse_server: Any
) -> None:
    """Superset still logs the import call (the logger is scrubbed, not switched off)."""
    with sqlite3.connect(f"file:{superset_server.home / 'superset.db'}?mode=ro", uri=True) as db:
        rows = db.execute("SELECT json FROM logs WHERE json LIKE '%/api/v1/assets/import/%'").fetchall()
    assert rows, "the asset import is missing from Superset's action log"
    assert all(clickhouse_server.password not in (row[0] or "") for row in rows)


def test_no_generated_secret_in_any_file_the_stack_wrote(
    after_sync: None, superset_server: Any, clickhouse_server: Any
) -> None:
    secrets = _secrets(superset_server, clickhouse_server)
    files = _files(superset_server.data_dir, clickhouse_server.data_dir)
    assert superset_server.home / "superset.db" in files
    for path in files:
        data = path.read_bytes()
        for value, own in secrets.items():
            leaked = path != own and value.encode() in data  # a bool: a failure does not print the secret
            assert not leaked, f"{path} holds the secret kept in {own.name}"


def test_every_file_the_stack_wrote_is_owner_only(
    after_sync: None, superset_server: Any, clickhouse_server: Any
) -> None:
    for path in _files(superset_server.data_dir, clickhouse_server.data_dir):
        mode = stat.S_IMODE(path.stat().st_mode)
        assert mode & 0o077 == 0, f"{path} is readable by others (mode {mode:o})"
    roots = [superset_server.data_dir, clickhouse_server.data_dir]
    for root in [*roots, superset_server.home, clickhouse_server.data_dir / "clickhouse", *_dirs(*roots)]:
        mode = stat.S_IMODE(root.stat().st_mode)
        assert mode & 0o077 == 0, f"{root} is open to others (mode {mode:o})"
