"""Shared CLI state: global options, settings loading, the console, output helpers."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from rich.console import Console

if TYPE_CHECKING:  # pydantic is loaded only by commands that read settings: `rtfin --help` stays fast
    from rtfin_cli.settings import LoadedSettings, RtfinSettings

# emoji=False: output quotes paths, files and articles, where ":x:" is text, not an emoji code
console = Console(highlight=False, emoji=False)
err_console = Console(stderr=True, highlight=False, emoji=False)
PIPED_WIDTH = 220  # tables printed to a file or pipe: no terminal width to fit, so no wrapping at 80


def out_console() -> Console:
    """The console, or a wide one when stdout is a file or pipe (unless COLUMNS says how wide)."""
    import os

    if console.is_terminal or "COLUMNS" in os.environ:
        return console
    return Console(width=PIPED_WIDTH, highlight=False, emoji=False)


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


def print_json(data: Any) -> None:
    """One JSON document on stdout (compact, one line, for scripts)."""
    sys.stdout.write(json.dumps(data, default=str, separators=(",", ":")) + "\n")
    sys.stdout.flush()


def is_tty() -> bool:
    return console.is_terminal
