"""Secrets never leak: distinctive fake secrets in the environment must appear in no output, no log file,
no exception text and no generated file, whatever the commands do (succeed, fail, --dry-run, --debug)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from rtfin_cli.local.supervisor import free_port
from tests.conftest import run_cli

SECRETS = {
    "RTFIN__POLYGON__API_KEY": "PolyKEY-8f3e-LEAKCHECK-a1",
    "RTFIN__KAFKA__SASL_PASSWORD": "KafkaPW-77c2-LEAKCHECK-b2",
    "RTFIN__CLICKHOUSE__PASSWORD": "ChPW-19af-LEAKCHECK-c3",
    "RTFIN__CLICKHOUSE__CLICKPIPES__KEY_SECRET": "PipeSecret-4d4d-LEAKCHECK-d4",
    "RTFIN__DATABRICKS__TOKEN": "dapiTOKEN-0b0b-LEAKCHECK-e5",
    "RTFIN__DASHBOARD__PASSWORD": "SupersetPW-5e5e-LEAKCHECK-f6",
    "RTFIN__DASHBOARD__PRESET_API_TOKEN": "PresetTok-6f6f-LEAKCHECK-g7",
    "RTFIN__DASHBOARD__PRESET_API_SECRET": "PresetSec-7a7a-LEAKCHECK-h8",
}
# Fragments, so a secret that is partly printed (cut, quoted, URL-encoded) is caught too.
NEEDLES = sorted({s.split("-LEAKCHECK-")[0] for s in SECRETS.values()} | {"LEAKCHECK"})

COMMANDS = [
    ["config", "show"],
    ["config", "show", "--json"],
    ["doctor"],
    ["--debug", "doctor", "--json"],
    ["sentiment", "submit", "--dry-run"],
    ["dashboard", "sync", "--dry-run"],
    ["transform", "run"],
    ["--debug", "transform", "ddl"],
    ["produce", "news", "--once"],
    ["--debug", "produce", "news", "--once"],
    ["dashboard", "sync"],
]


@pytest.fixture(scope="module")
def leak_env(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, str], Path]:
    cwd = tmp_path_factory.mktemp("secrets")
    dead = free_port()  # nothing listens here: every service call fails, which is where leaks hide
    env = {k: v for k, v in os.environ.items() if not k.startswith("RTFIN")}
    env.update(SECRETS)
    env.update(
        RTFIN__LOCAL__DATA_DIR=str(cwd / ".rtfin"),
        RTFIN__KAFKA__BOOTSTRAP=f"127.0.0.1:{dead}",
        RTFIN__KAFKA__TIMEOUT_S="2",
        RTFIN__KAFKA__SASL_USERNAME="user",
        RTFIN__CLICKHOUSE__PORT=str(dead),
        RTFIN__CLICKHOUSE__CONNECT_TIMEOUT_S="2",
        RTFIN__POLYGON__REST_URL=f"http://127.0.0.1:{dead}",
        RTFIN__POLYGON__MAX_RETRIES="0",
        RTFIN__DATABRICKS__HOST=f"http://127.0.0.1:{dead}",
        RTFIN__DASHBOARD__URL=f"http://127.0.0.1:{dead}",
    )
    return env, cwd


@pytest.fixture(scope="module")
def outputs(leak_env: tuple[dict[str, str], Path]) -> dict[str, str]:
    """Each command run once; its stdout + stderr."""
    env, cwd = leak_env
    result = {}
    for args in COMMANDS:
        out = run_cli(*args, env=env, cwd=cwd, timeout=180)
        result[" ".join(args)] = out.stdout + out.stderr
    return result


@pytest.mark.parametrize("args", COMMANDS, ids=lambda a: " ".join(a))
def test_no_secret_in_output(outputs: dict[str, str], args: list[str]) -> None:
    text = outputs[" ".join(args)]
    for needle in NEEDLES:
        assert needle not in text, f"`rtfin {' '.join(args)}` printed a secret fragment {needle!r}"


def test_no_secret_in_files_written(leak_env: tuple[dict[str, str], Path], outputs: dict[str, str]) -> None:
    """Every file the commands above wrote (logs, dbt profiles, rendered assets, job specs) is clean."""
    _, cwd = leak_env
    assert outputs  # the commands ran
    files = [p for p in cwd.rglob("*") if p.is_file()]
    for path in files:
        data = path.read_bytes()
        for needle in NEEDLES:
            assert needle.encode() not in data, f"{path} contains a secret fragment {needle!r}"
