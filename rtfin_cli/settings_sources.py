"""Where settings come from before they are validated: rtfin.toml profiles and RTFIN__SECTION__KEY variables.

Plain dictionaries in, plain dictionaries out; :mod:`rtfin_cli.settings` validates and types them.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from rtfin_cli.errors import ConfigError

ENV_PREFIX = "RTFIN__"
DEFAULT_CONFIG = "rtfin.toml"
DEFAULT_PROFILE = "local"


def flatten(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested tables as one level of dotted keys: ``{"kafka": {"bootstrap": x}}`` → ``{"kafka.bootstrap": x}``."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(flatten(value, path + "."))
        else:
            out[path] = value
    return out


def _set_path(data: dict[str, Any], path: list[str], value: Any) -> None:
    for part in path[:-1]:
        data = data.setdefault(part, {})
        if not isinstance(data, dict):
            raise ConfigError(f"environment key {'.'.join(path)} conflicts with a scalar setting")
    data[path[-1]] = value


def env_overrides(environ: dict[str, str] | None = None) -> dict[str, Any]:
    """``RTFIN__KAFKA__BOOTSTRAP=x`` → ``{"kafka": {"bootstrap": "x"}}``.

    An empty variable counts as unset: CI and compose pass a secret that an environment lacks as "".
    """
    environ = dict(os.environ) if environ is None else environ
    out: dict[str, Any] = {}
    for name, value in environ.items():
        if name.upper().startswith(ENV_PREFIX) and len(name) > len(ENV_PREFIX) and value != "":
            path = [p.lower() for p in name[len(ENV_PREFIX) :].split("__")]
            _set_path(out, path, value)
    return out


def deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def read_profile(path: Path, profile: str) -> dict[str, Any]:
    """The profile's table of a rtfin.toml file; raises ConfigError naming the file."""
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: malformed TOML ({exc})", "Fix the syntax at the position shown.") from exc
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read ({exc.strerror})") from exc
    table = doc.get(profile)
    if table is None:
        known = ", ".join(sorted(k for k, v in doc.items() if isinstance(v, dict))) or "none"
        raise ConfigError(
            f"unknown profile '{profile}' in {path}",
            f"Profiles defined there: {known}. Choose one with --profile or RTFIN_PROFILE.",
        )
    if not isinstance(table, dict):
        raise ConfigError(f"{path}: [{profile}] must be a table")
    return table


def config_file(
    config: str | Path | None, profile: str, env: dict[str, str]
) -> tuple[Path | None, dict[str, Any]]:
    """The config file in use (None: none, built-in profile only) and the profile's table in it."""
    path = Path(config) if config else Path(env.get("RTFIN_CONFIG", DEFAULT_CONFIG))
    if path.exists():
        return path, read_profile(path, profile)
    if config or env.get("RTFIN_CONFIG"):
        raise ConfigError(f"config file {path} not found", "Pass an existing file with --config.")
    if profile != DEFAULT_PROFILE:
        raise ConfigError(
            f"unknown profile '{profile}': no {DEFAULT_CONFIG} in {Path.cwd()}",
            "Copy rtfin.example.toml to rtfin.toml, or use the built-in 'local' profile.",
        )
    return None, {}


def config_error(
    exc: ValidationError, path: Path | None, profile: str, env_values: dict[str, Any]
) -> ConfigError:
    err = exc.errors()[0]
    key = ".".join(str(p) for p in err["loc"])
    flat_env = flatten(env_values)
    if key in flat_env or any(key.startswith(k + ".") for k in flat_env):
        where = f"environment variable {ENV_PREFIX}{key.upper().replace('.', '__')}"
    else:
        where = f"{path} [{profile}]" if path else f"profile '{profile}'"
    got = err.get("input")
    got_text = "" if isinstance(got, dict) or err["type"] == "extra_forbidden" else f" (got {got!r})"
    if err["type"] == "extra_forbidden":
        return ConfigError(f"{where}: unknown key '{key}'", "Check the spelling against rtfin.example.toml.")
    return ConfigError(f"{where}: invalid value for '{key}': {err['msg']}{got_text}")
