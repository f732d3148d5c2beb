"""Renderers of stage events (``rtfin_cli.report``): rich on a terminal, lines or JSON in a pipe.

:func:`reporter_for` is the one place that chooses: ``--json`` gives one JSON object per event on stderr
(stdout keeps the command's own result), a terminal gets a rich view, anything else plain lines. How each
stage's payload reads (the producer counters, the sentiment job's batches, a message) is defined here.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Protocol, Self

from rtfin_cli.cli.common import console, err_console
from rtfin_cli.report import Event, EventKind

PRODUCE, SENTIMENT, DATABRICKS = "produce", "sentiment", "databricks"  # the stages' names in their events


# -- how a payload reads -------------------------------------------------------------------------------
def iso_ms(ms: int | None) -> str:
    """An epoch-ms time as ``YYYY-MM-DD HH:MM:SSZ`` (``-`` when unknown)."""
    return "-" if ms is None else datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def producer_line(d: Mapping[str, Any]) -> str:
    """A producer's counters as key=value (log lines, the final summary)."""
    return (
        f"source={d['source']} delivered={d['delivered']} rate={d['rate']} "
        f"dead_lettered={d['dead_lettered']} "
        f"duplicates={d['duplicates']} reconnects={d['reconnects']} retries={d['retries']} "
        f"last_event={iso_ms(d['last_event_ms'])}"
        + "".join(f" {k}={d[k]}" for k in STREAM_COUNTERS if k in d)
    )


# the stocks stream's own counters (connection health and REST repair), when a producer reports them
STREAM_COUNTERS = ("connects", "longest_disconnected_s", "repair_windows", "repaired", "repair_failed")


def sentiment_line(d: Mapping[str, Any]) -> str:
    """The sentiment job's progress: batches, rows, throughput and the committed offsets."""
    offsets = " ".join(f"p{k}:{v}" for k, v in sorted(d["offsets"].items())) or "-"
    return (
        f"batches {d['batches']}  rows {d['rows']}  scored {d['scored']}  dlq {d['dlq']}  "
        f"{d['rows_per_s']:.1f} rows/s  offsets {offsets}"
    )


def text(event: Event) -> str:
    """The one-line plain text of any event."""
    d = event.payload
    if "message" in d:
        return str(d["message"])
    if event.stage == PRODUCE:
        return producer_line(d)
    if event.stage == SENTIMENT:
        if event.kind is EventKind.STARTED:
            return f"sentiment job starting: master {d['master']}, model {d['model']}"
        return sentiment_line(d)
    return " ".join([event.stage, str(event.kind), *(f"{k}={v}" for k, v in d.items())])


def _producer_table(d: Mapping[str, Any], title: str) -> Any:
    from rich.table import Table

    table = Table(title=title, show_header=False, box=None, title_justify="left")
    rows = [
        ("delivered", f"{d.get('delivered', 0):,}"),
        ("records/s", f"{d.get('rate', 0):,.1f}"),
        ("last event", iso_ms(d.get("last_event_ms"))),
        ("duplicates skipped", f"{d.get('duplicates', 0):,}"),
        ("dead-lettered", f"{d.get('dead_lettered', 0):,}"),
        ("reconnects/retries", f"{d.get('reconnects', 0)}/{d.get('retries', 0)}"),
        ("errors", str(d.get("last_error") or "-")),
    ]
    for k, v in rows:
        table.add_row(f"[dim]{k}[/]", v)
    return table


def _sentiment_view(event: Event | None, elapsed: float) -> str:
    if event is None:
        return ""
    d = event.payload
    if event.kind is EventKind.STARTED:
        return f"[dim]starting Spark ({d['master']}), model {d['model']} ...[/]"
    return f"[green]running[/] {elapsed:5.0f}s  {sentiment_line(d)}"


# -- how each stage is shown -----------------------------------------------------------------------------
@dataclass(frozen=True)
class Style:
    """How one stage's progress is shown: a live view on a terminal, its rate and form in a pipe."""

    live: bool = False  # a terminal shows the stage's progress in one live view (else: a line per event)
    on_stderr: bool = False  # the view and its lines go to stderr (stdout stays for the command's result)
    line_style: str = ""  # rich style of the lines a terminal prints
    refresh: int = 4  # live view refreshes per second
    every_s: float = 0.0  # pipe: at most one progress line per this many seconds
    changes_only: bool = False  # pipe: a progress line equal to the one before is not repeated
    stamp: bool = False  # pipe: progress lines start with the local time and the stage
    logger: str | None = None  # pipe: lines go through this logger instead of stdout


STYLES = {
    PRODUCE: Style(live=True, on_stderr=True, every_s=10.0, logger="rtfin.producers.status"),
    SENTIMENT: Style(live=True, refresh=2, changes_only=True, stamp=True),
    DATABRICKS: Style(on_stderr=True, line_style="dim"),
}


class CliReporter(Protocol):
    """A Reporter that is also a context manager (a live view starts and stops with it)."""

    def emit(self, event: Event) -> None: ...
    def __enter__(self) -> Self: ...
    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None: ...


class _Context:
    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        pass


class _Throttle:
    """Pipe policy of a style: how often a progress line may be written, and whether repeats are."""

    def __init__(self, style: Style) -> None:
        self.style, self._last_at, self._last = style, 0.0, ""

    def allows(self, event: Event, line: str) -> bool:
        if event.kind is not EventKind.PROGRESS or "message" in event.payload:
            return True
        if self.style.changes_only and line == self._last:
            return False
        now = time.monotonic()
        if self.style.every_s and now - self._last_at < self.style.every_s:
            return False
        self._last_at, self._last = now, line
        return True


class LineReporter(_Context):
    """Pipes and CI: one plain line per event (progress throttled as the stage's style says)."""

    def __init__(self, style: Style | None = None, write: Callable[[str], None] | None = None) -> None:
        style = style or Style()
        self.style, self._throttle = style, _Throttle(style)
        if write is not None:
            self._write = write
        elif style.logger:
            self._write = logging.getLogger(style.logger).info
        else:
            self._write = _stderr_line if style.on_stderr else _stdout_line

    def emit(self, event: Event) -> None:
        line = text(event)
        if not self._throttle.allows(event, line):
            return
        if self.style.stamp and event.kind is EventKind.PROGRESS:
            line = f"{time.strftime('%Y-%m-%dT%H:%M:%S')} {event.stage} {line}"
        self._write(line)


class JsonReporter(_Context):
    """``--json``: one compact JSON object per event on stderr (``{"event": kind, "stage": ..., **payload}``)."""

    def __init__(self, style: Style | None = None, stream: Any = None) -> None:
        self._throttle, self._stream = _Throttle(style or Style()), stream

    def emit(self, event: Event) -> None:
        doc = {"event": str(event.kind), "stage": event.stage, **event.payload}
        line = json.dumps(doc, default=str, separators=(",", ":"))
        if self._throttle.allows(event, line):
            stream = self._stream or sys.stderr
            stream.write(line + "\n")
            stream.flush()


class RichReporter(_Context):
    """Terminals: a stage with a live view is redrawn in place; other events are printed as lines."""

    def __init__(self, stage: str, style: Style | None = None, title: str = "") -> None:
        self.stage, self.style, self.title = stage, style or Style(), title
        self.console = err_console if self.style.on_stderr else console
        self.started = time.monotonic()
        self._live: Any = None

    def __enter__(self) -> Self:
        if self.style.live:
            from rich.live import Live

            self._live = Live(
                self._view(None), console=self.console, refresh_per_second=self.style.refresh, transient=False
            )
            self._live.__enter__()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._live is not None:
            self._live.__exit__(kind, exc, tb)
            self._live = None

    def _view(self, event: Event | None) -> Any:
        if self.stage == PRODUCE:
            return _producer_table(event.payload if event else {}, self.title)
        if self.stage == SENTIMENT:
            return _sentiment_view(event, time.monotonic() - self.started)
        return text(event) if event else ""

    def emit(self, event: Event) -> None:
        if self._live is not None and event.stage == self.stage and "message" not in event.payload:
            self._live.update(self._view(event))
        else:
            line = text(event)
            style = self.style.line_style or None
            self.console.print(line, soft_wrap=True, highlight=False, markup=False, style=style)


def _stdout_line(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def _stderr_line(line: str) -> None:
    sys.stderr.write(line + "\n")
    sys.stderr.flush()


def reporter_for(stage: str, *, as_json: bool = False, title: str = "") -> CliReporter:
    """The renderer of a command's events: JSON lines with ``--json``, rich on a terminal, else lines."""
    style = STYLES.get(stage, Style())
    if as_json:
        return JsonReporter(style)
    if console.is_terminal:
        return RichReporter(stage, style, title)
    return LineReporter(style)
