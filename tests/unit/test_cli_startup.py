"""`rtfin --help` stays fast (bench/bench_cli.py measures it): the CLI module graph loads only typer and rich.

Settings (pydantic) and every client library load when a command runs, not when the command tree is built.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

pytestmark = pytest.mark.unit

DEFERRED = ("pydantic", "pydantic_settings", "httpx", "yaml", "jinja2", "aiohttp", "websockets", "databricks",
            "confluent_kafka", "clickhouse_connect", "numpy", "click")  # fmt: skip


def _loaded_after(code: str) -> list[str]:
    probe = f"import sys\n{code}\nprint('LOADED:' + ','.join(m for m in {DEFERRED!r} if m in sys.modules))"
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=True
    )
    line = next(ln for ln in out.stdout.splitlines() if ln.startswith("LOADED:"))
    return [m for m in line.removeprefix("LOADED:").split(",") if m]


def test_building_the_command_tree_defers_settings_and_clients() -> None:
    assert _loaded_after("import rtfin_cli.cli.main") == []


def test_help_renders_without_settings() -> None:
    code = (
        "from rtfin_cli.cli.main import app\n"
        "try:\n    app(['--help'], standalone_mode=False)\nexcept SystemExit:\n    pass"
    )
    assert _loaded_after(code) == []
