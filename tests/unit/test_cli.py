from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from rtfin_cli import __version__
from tests.conftest import run_cli


def test_version() -> None:
    out = run_cli("--version")
    assert out.returncode == 0 and out.stdout.strip() == f"rtfin {__version__}"


def test_every_command_group_is_registered() -> None:
    out = run_cli("--help")
    assert out.returncode == 0
    for group in (
        "produce",
        "sentiment",
        "transform",
        "dashboard",
        "lag",
        "local",
        "topics",
        "config",
        "doctor",
    ):
        assert group in out.stdout


def test_bad_config_is_one_red_line_and_hint_without_traceback(tmp_path: Path) -> None:
    (tmp_path / "rtfin.toml").write_text('[local.kafka.topics]\npartitions = "x"\n')
    out = run_cli("config", "show", cwd=tmp_path)
    assert out.returncode == 3
    lines = out.stderr.strip().splitlines()
    assert lines[0].startswith("error:") and "kafka.topics.partitions" in lines[0]
    assert lines[1].startswith("hint:") and len(lines) == 2
    assert "Traceback" not in out.stderr


def test_debug_shows_traceback(tmp_path: Path) -> None:
    (tmp_path / "rtfin.toml").write_text("[local\n")
    out = run_cli("--debug", "config", "show", cwd=tmp_path)
    assert out.returncode == 3 and "Traceback" in out.stderr


def test_unknown_profile_exit_code(tmp_path: Path) -> None:
    out = run_cli("--profile", "nope", "config", "show", cwd=tmp_path)
    assert out.returncode == 3 and "unknown profile 'nope'" in out.stderr


def test_config_show_json_masks_secrets(tmp_path: Path) -> None:
    import json
    import os

    env = {**os.environ, "RTFIN__CLICKHOUSE__PASSWORD": "s3cr3t-distinctive-value"}
    out = run_cli("config", "show", "--json", cwd=tmp_path, env=env)
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert doc["settings"]["clickhouse.password"] == {"value": "********", "source": "env"}
    assert "s3cr3t-distinctive-value" not in out.stdout + out.stderr


def test_import_hygiene() -> None:
    """The CLI module graph must not import heavy stage dependencies at start-up."""
    code = (
        "import sys, rtfin_cli.cli.main\n"
        "heavy = ['pyspark','transformers','torch','dbt','chdb','clickhouse_connect','pandas','confluent_kafka']\n"
        "print(','.join(m for m in heavy if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_an_error_quoting_a_file_prints_it_verbatim(tmp_path: Path) -> None:
    """Neither rich markup ("[bold]") nor emoji codes (":x:", as in /etc/passwd) are read in what a message quotes."""
    bad = tmp_path / "[bold]users.tsv"
    bad.write_text("root:x:0:0:root:/root:/bin/bash\n")
    out = run_cli("sentiment", "eval", str(bad), cwd=tmp_path)
    assert out.returncode != 0
    first = out.stderr.splitlines()[0]
    assert first.startswith("error:") and str(bad) in first and "root:x:0:0" in first, first


def _params(command: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[Any, tuple[str, ...], Any]]:
    """(command, its path, parameter) of every option that takes a value and every argument, in the whole tree."""
    for param in command.params:
        if not getattr(param, "is_flag", False):
            yield command, path, param
    for name, sub in getattr(command, "commands", {}).items():
        yield from _params(sub, (*path, name))


def test_every_option_and_argument_refuses_an_empty_or_blank_value() -> None:
    """Only parsed (make_context), never run: the check stops at the value, before any command body."""
    import typer

    from rtfin_cli.cli.main import app, refuse_blank_options
    from rtfin_cli.errors import UsageError

    root = typer.main.get_command(app)
    refuse_blank_options(root)
    params = list(_params(root))
    named = {(path, p.opts[0]) for _, path, p in params}
    assert (
        len(params) > 40
        and {((), "--profile"), (("lag",), "--group"), (("sentiment", "eval"), "file")} <= named
    )
    for command, path, param in params:
        option = param.param_type_name == "option"
        name = param.opts[0] if option else param.name.upper()
        for blank in ("", "  "):
            with pytest.raises(UsageError, match=f"^{name} is empty$"):
                command.make_context(
                    path[-1] if path else "rtfin", [param.opts[0], blank] if option else [blank]
                )


def test_a_blank_option_is_one_error_line_and_exit_2() -> None:
    out = run_cli("lag", "--once", "--group", "")  # never "every group"
    assert out.returncode == 2 and out.stderr.splitlines()[0] == "error: --group is empty", out.stderr
