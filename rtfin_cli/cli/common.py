"""Shared CLI state: global options, settings loading, the console, output helpers."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NoReturn

import typer
from rich.console import Console

from rtfin_cli.errors import NotImplementedYet

if TYPE_CHECKING:  # pydantic is loaded only by commands that read settings: `rtfin --help` stays fast
    from rtfin_cli.settings import LoadedSettings, RtfinSettings

console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)


@dataclass
class State:
    profile: str | None = None
    config: str | None = None
    debug: bool = False
    _loaded: LoadedSettings | None = field(default=None, repr=False)

    def loaded(self) -> LoadedSettings:
        if self._loaded is None:
            from rtfin_cli.settings import load_settings

            self._loaded = load_settings(self.config, self.profile)
        return self._loaded

    @property
    def settings(self) -> RtfinSettings:
        return self.loaded().settings


state = State()


def settings() -> RtfinSettings:
    """The resolved settings of the selected profile (loaded once, on first use)."""
    return state.settings


def not_implemented(what: str, issue: int) -> NoReturn:
    raise NotImplementedYet(f"`rtfin {what}` is not implemented yet (issue #{issue})")


def print_json(data: Any) -> None:
    """One JSON document on stdout (compact, one line, for scripts)."""
    sys.stdout.write(json.dumps(data, default=str, separators=(",", ":")) + "\n")
    sys.stdout.flush()


def is_tty() -> bool:
    return console.is_terminal


def add_stub(app: Any, group: str, name: str, issue: int, help_text: str) -> None:
    """Register a planned command that exits 2 with 'not implemented yet' until its issue lands."""

    def _stub(ctx: typer.Context) -> None:
        not_implemented(f"{group} {name}".strip(), issue)

    _stub.__doc__ = f"{help_text} [not implemented yet: issue #{issue}]"
    app.command(name, context_settings={"allow_extra_args": True, "ignore_unknown_options": True})(_stub)
