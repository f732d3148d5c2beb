"""The local data directory is the owner's only: after `rtfin local clickhouse start`, a query, `status` and
`stop` as a user runs them, every directory under it is 0700, every file 0600, and the generated password
is in its own file only. (The Superset side, with a real sync: tests/integration/dashboard/
test_secrets_at_rest.py.)"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from tests.conftest import run_cli


def test_data_dir_is_owner_only_and_the_password_in_its_own_file(tmp_path: Path) -> None:
    from rtfin_cli.local.supervisor import free_port

    port, data = free_port(), tmp_path / ".rtfin"
    env = {k: v for k, v in os.environ.items() if not k.startswith("RTFIN")}
    env.update(RTFIN__LOCAL__DATA_DIR=str(data), RTFIN__LOCAL__CLICKHOUSE_PORT=str(port),
               RTFIN__CLICKHOUSE__PORT=str(port))  # fmt: skip
    try:
        started = run_cli("local", "clickhouse", "start", env=env, cwd=tmp_path)
        assert started.returncode == 0, started.stdout + started.stderr
        status = run_cli("local", "clickhouse", "status", "--json", env=env, cwd=tmp_path)
        assert status.returncode == 0, status.stderr
    finally:
        run_cli("local", "clickhouse", "stop", env=env, cwd=tmp_path)
    own = data / "clickhouse" / "password"
    password = own.read_text().strip().encode()
    paths = [data, *data.rglob("*")]
    assert any(p.suffix == ".log" for p in paths) and any(p.name == "db" for p in paths)
    for path in paths:
        mode = stat.S_IMODE(path.lstat().st_mode)
        assert mode & 0o077 == 0, f"{path} is open to others (mode {mode:o})"
        leaked = path.is_file() and path != own and password in path.read_bytes()
        assert not leaked, f"{path} holds the generated password"
