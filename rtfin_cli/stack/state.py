"""What the local stack remembers about each stage between commands, and how a stage's run ended.

``up`` and the watchdog write one ``<data_dir>/run/<stage>.state.json`` per stage beside the
supervisor's pid file; ``status`` combines both into the state a user sees.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from rtfin_cli.report import EventKind


class State(StrEnum):
    """A stage's state: the first four are stored, the last three only derived by ``status``."""

    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    STOPPED = "stopped"
    RESTARTING = "restarting"  # stored as running, dead, and the watchdog is alive
    CRASHED = "crashed"  # stored as running, dead, and no watchdog
    NOT_RUN = "not run"  # a one-shot stage that never ran


class Outcome(StrEnum):
    """What one start or stop of a stage did (the word ``rtfin local up|down`` prints)."""

    STARTED = "started"
    REUSED = "reused"
    DONE = "done"
    FAILED = "failed"
    STOPPED = "stopped"
    PURGED = "purged"

    @property
    def kind(self) -> EventKind:
        """The report event kind of this outcome."""
        return _KINDS[self]


_KINDS = {
    Outcome.STARTED: EventKind.STARTED,
    Outcome.REUSED: EventKind.SKIPPED,
    Outcome.DONE: EventKind.DONE,
    Outcome.FAILED: EventKind.FAILED,
    Outcome.STOPPED: EventKind.STOPPED,
    Outcome.PURGED: EventKind.DONE,
}


@dataclass
class StepState:
    """What the stack knows about a stage beyond its pid file (written by `up` and the watchdog)."""

    state: State = State.STOPPED
    note: str = ""
    since: float = 0.0
    log_offset: int = 0
    restarts: list[float] = field(default_factory=list)
    next_restart_at: float | None = None

    def __post_init__(self) -> None:
        self.state = State(self.state)  # as read back from JSON


def write_json(path: Path, data: Any) -> None:
    """Write ``data`` as JSON atomically (readers never see half a file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=1))
    os.replace(tmp, path)


_ERROR_LINE = re.compile(r"error|exception|traceback|fatal", re.IGNORECASE)


def last_error(log: Path, lines: int = 200) -> str:
    """The last line of a log's tail that looks like an error ('' when none)."""
    try:
        with open(log, "rb") as fh:
            fh.seek(max(0, fh.seek(0, 2) - 64 * 1024))
            tail = fh.read().decode(errors="replace").splitlines()[-lines:]
    except OSError:
        return ""
    hits = [line.strip() for line in tail if _ERROR_LINE.search(line)]
    return hits[-1][:300] if hits else ""
