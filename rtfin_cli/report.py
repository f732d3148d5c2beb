"""How stage code tells its caller what it is doing, without printing.

Stage code (producers, sentiment, transform, the dev stack) emits :class:`Event` objects to a
:class:`Reporter` it is given; the cli picks a renderer (rich on a terminal, lines or JSON in a pipe, see
``rtfin_cli.cli.reporting``), tests pass a :class:`ListReporter`. This module imports nothing heavy.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol


class EventKind(StrEnum):
    """What an event says about its stage."""

    STARTED = "started"  # the stage began (payload: what it runs with)
    PROGRESS = "progress"  # counters or a step of a running stage
    DONE = "done"  # the stage finished its work
    STOPPED = "stopped"  # a long-running stage ended on request
    SKIPPED = "skipped"  # the stage did not run (payload says why)
    FAILED = "failed"  # the stage failed (payload: the error)
    WARNING = "warning"  # something the user should know; the stage goes on
    INFO = "info"  # a plain message


@dataclass(frozen=True)
class Event:
    """One report: its kind, the stage it comes from, and plain data about it (JSON-serialisable)."""

    kind: EventKind
    stage: str
    payload: Mapping[str, Any] = field(default_factory=dict)


class Reporter(Protocol):
    """Receives events; must return quickly (stage code calls it from its loops)."""

    def emit(self, event: Event) -> None: ...


class NullReporter:
    """Drops every event: the default when nobody listens."""

    def emit(self, event: Event) -> None:
        pass


class ListReporter:
    """Keeps every event in ``events`` (the in-memory double for tests)."""

    def __init__(self) -> None:
        self.events: list[Event] = []

    def emit(self, event: Event) -> None:
        self.events.append(event)

    def of(self, kind: EventKind) -> list[Event]:
        """The events of one kind, in order."""
        return [e for e in self.events if e.kind is kind]


def message(reporter: Reporter, stage: str, text: str, kind: EventKind = EventKind.PROGRESS) -> None:
    """Emit a one-line message (payload ``{"message": text}``)."""
    reporter.emit(Event(kind, stage, {"message": text}))
