"""`rtfin local clickhouse start|stop|status` as a user runs them, on a free port in a temp dir."""

from __future__ import annotations

import json
import os
from pathlib import Path

from tests.conftest import run_cli


def test_start_status_stop(tmp_path: Path) -> None:
    from rtfin_cli.local.supervisor import free_port, port_open

    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("RTFIN")}
    env.update(RTFIN__LOCAL__DATA_DIR=str(tmp_path / ".rtfin"), RTFIN__LOCAL__CLICKHOUSE_PORT=str(port),
               RTFIN__CLICKHOUSE__PORT=str(port))  # fmt: skip
    try:
        started = run_cli("local", "clickhouse", "start", env=env, cwd=tmp_path)
        assert started.returncode == 0, started.stdout + started.stderr
        assert "ClickHouse ready" in started.stdout
        password = (tmp_path / ".rtfin" / "clickhouse" / "password").read_text().strip()
        assert password and password not in started.stdout + started.stderr

        again = run_cli("local", "clickhouse", "start", env=env, cwd=tmp_path)
        assert again.returncode == 7 and "already running" in again.stdout + again.stderr

        status = run_cli("local", "clickhouse", "status", "--json", env=env, cwd=tmp_path)
        info = json.loads(status.stdout)
        assert status.returncode == 0 and info["running"] and info["answering"]
        assert info["url"] == f"http://127.0.0.1:{port}"

        # the local profile finds the generated password: a plain clickhouse-connect client gets in
        from rtfin_cli.settings import load_settings

        ch = load_settings(environ=env).settings.clickhouse
        import clickhouse_connect

        client = clickhouse_connect.get_client(
            host=ch.host,
            port=ch.port,
            username=ch.user,
            password=ch.password.get_secret_value(),  # type: ignore[union-attr]
        )
        assert client.command("SELECT 1") == 1
        client.close()
    finally:
        stopped = run_cli("local", "clickhouse", "stop", env=env, cwd=tmp_path)
    assert stopped.returncode == 0 and "stopped" in stopped.stdout
    assert not port_open(port)
    after = run_cli("local", "clickhouse", "status", env=env, cwd=tmp_path)
    assert after.returncode == 1 and "stopped" in after.stdout
