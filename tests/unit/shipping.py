"""Helpers for the offline checks of docker/ and .github/workflows/ (no Docker engine, no GitHub here)."""

from __future__ import annotations

import re
import typing
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
DOCKER = ROOT / "docker"
WORKFLOWS = ROOT / ".github" / "workflows"

_INTERP = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}")


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def interpolate(value: str) -> str:
    """Compose-style ``${VAR:-default}`` with an empty environment: defaults, required vars as ``<VAR>``."""

    def repl(m: re.Match[str]) -> str:
        name, op, arg = m.group(1), m.group(2) or "", m.group(3) or ""
        if op.endswith("-"):
            return arg
        return f"<{name}>" if op.endswith("?") else ""

    return _INTERP.sub(repl, value).replace("$$", "$")


def _settings_leaves() -> Iterator[tuple[str, bool]]:
    """(dotted key, is_secret) for every leaf of RtfinSettings, from the model itself."""
    from pydantic import BaseModel, SecretStr

    from rtfin_cli.settings import RtfinSettings

    def walk(model: type[BaseModel], prefix: str) -> Iterator[tuple[str, bool]]:
        for name, field in model.model_fields.items():
            ann = field.annotation
            if isinstance(ann, type) and issubclass(ann, BaseModel):
                yield from walk(ann, f"{prefix}{name}.")
            else:
                yield f"{prefix}{name}", ann is SecretStr or SecretStr in typing.get_args(ann)

    yield from walk(RtfinSettings, "")


def env_name(key: str) -> str:
    return "RTFIN__" + key.upper().replace(".", "__")


def settings_env_keys() -> set[str]:
    """Every RTFIN__SECTION__KEY that rtfin's settings accept."""
    return {env_name(k) for k, _ in _settings_leaves()}


def secret_env_keys() -> set[str]:
    return {env_name(k) for k, secret in _settings_leaves() if secret}


def resolve_cli(argv: Sequence[str]) -> tuple[Any, str]:
    """Parse ``rtfin ARGV`` with the real CLI down to the leaf command, without running it.

    Returns (command, its help text). Raises ``typer.TyperException`` (a usage error) for an unknown
    command or option, a missing sub-command or a bad option value.
    """
    import typer

    from rtfin_cli.cli.main import app

    cmd: Any = typer.main.get_command(app)
    ctx = cmd.make_context("rtfin", list(argv))
    path = "rtfin"
    while hasattr(cmd, "resolve_command"):  # a group: descend into the named sub-command
        rest = [*ctx._protected_args, *ctx.args]
        if not rest:
            raise typer.BadParameter(f"`{path}` needs a sub-command")
        name, sub, rest = cmd.resolve_command(ctx, rest)
        path = f"{path} {name}"
        ctx = sub.make_context(name, rest, parent=ctx)
        cmd = sub
    return cmd, cmd.help or ""
