"""`rtfin dashboard` / `rtfin local superset` bad input, without services."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest

from tests.conftest import ROOT, run_cli


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RTFIN")}
    env.update(
        RTFIN__DASHBOARD__ASSETS_DIR=str(ROOT / "superset_assets"), RTFIN__LOCAL__DATA_DIR=str(tmp_path / "d")
    )
    env.update(extra)
    return env


def _one_error(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert lines[0].startswith("error:") and "Traceback" not in stderr, stderr
    assert len(lines) <= 2, stderr  # one red line + hint
    return lines[0]


def test_dry_run_needs_no_server_and_prints_no_secret(tmp_path: Path) -> None:
    env = _env(
        tmp_path,
        RTFIN__CLICKHOUSE__PASSWORD="ch-secret-value-1234",
        RTFIN__DASHBOARD__URL="http://127.0.0.1:9",
    )
    out = run_cli("dashboard", "sync", "--dry-run", env=env, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "dashboard Real-time finance" in out.stdout and "ch-secret-value-1234" not in out.stdout


def test_unknown_target(tmp_path: Path) -> None:
    out = run_cli("dashboard", "sync", "--target", "tableau", env=_env(tmp_path), cwd=tmp_path)
    assert out.returncode == 3 and "unknown dashboard target 'tableau'" in _one_error(out.stderr)


def test_preset_without_workspace_or_token(tmp_path: Path) -> None:
    out = run_cli("dashboard", "sync", "--target", "preset", env=_env(tmp_path), cwd=tmp_path)
    assert out.returncode == 3 and "preset_workspace is not set" in _one_error(out.stderr)
    env = _env(tmp_path, RTFIN__DASHBOARD__PRESET_WORKSPACE="https://x.us1a.app.preset.io")
    out = run_cli("dashboard", "sync", "--target", "preset", env=env, cwd=tmp_path)
    assert out.returncode == 3 and "preset_api_token" in _one_error(out.stderr)


def test_no_superset_password(tmp_path: Path) -> None:
    out = run_cli(
        "dashboard", "sync", env=_env(tmp_path, RTFIN__DASHBOARD__URL="http://127.0.0.1:9"), cwd=tmp_path
    )
    assert out.returncode == 3 and "no password for Superset user 'admin'" in _one_error(out.stderr)


def test_missing_assets_folder(tmp_path: Path) -> None:
    env = _env(tmp_path, RTFIN__DASHBOARD__ASSETS_DIR=str(tmp_path))
    out = run_cli("dashboard", "sync", "--dry-run", env=env, cwd=tmp_path)
    assert out.returncode == 6 and "not a Superset assets folder" in _one_error(out.stderr)


def test_broken_yaml_names_file(tmp_path: Path) -> None:
    shutil.copytree(ROOT / "superset_assets", tmp_path / "a")
    bad = tmp_path / "a" / "dashboards" / "Real-time_finance.yaml"
    bad.write_text(bad.read_text() + "  - : [\n")
    env = _env(tmp_path, RTFIN__DASHBOARD__ASSETS_DIR=str(tmp_path / "a"))
    out = run_cli("dashboard", "sync", "--dry-run", env=env, cwd=tmp_path)
    assert out.returncode == 6 and f"{bad}:" in _one_error(out.stderr)


def test_superset_not_installed(tmp_path: Path) -> None:
    env = _env(
        tmp_path, RTFIN__LOCAL__CACHE_DIR=str(tmp_path / "empty-cache"), RTFIN__LOCAL__SUPERSET_PORT="9"
    )
    out = run_cli("local", "superset", "start", env=env, cwd=tmp_path)
    assert out.returncode == 7 and "Superset is not installed" in _one_error(out.stderr)
    assert "make setup" in out.stderr
    status = run_cli("local", "superset", "status", "--json", env=env, cwd=tmp_path)
    assert status.returncode == 1 and '"running":false' in status.stdout


def test_local_up_guide_names_the_dashboard_page_and_the_login_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`make demo` ends with the dashboard's own URL (its slug) and a command that shows the password."""
    from rtfin_cli.cli import common, local

    monkeypatch.setattr(common, "state", common.State())  # settings of this test only, not cached for others
    for key, value in _env(tmp_path).items():
        if key.startswith("RTFIN"):
            monkeypatch.setenv(key, value)
    assert local._dashboard_url(18088) == "http://127.0.0.1:18088/superset/dashboard/rtfin/"
    makefile = (ROOT / "Makefile").read_text()
    demo = makefile[makefile.index("\ndemo:") : makefile.index("\nclean:")]
    assert "local up --with-dashboard" in demo  # whose closing guide is this:
    local._guide(
        SimpleNamespace(data_dir=tmp_path), [{"service": "superset", "state": "running", "port": 18088}]
    )
    guide = capsys.readouterr().out
    assert "Dashboard: http://127.0.0.1:18088/superset/dashboard/rtfin/" in guide
    assert f"password: cat {tmp_path / 'superset' / 'admin_password'}\n" in guide  # whole, on one line
