"""Lag snapshots as plain data, the sliding window that gives them rates and trends, and the state rules.

Nothing here talks to a service: :mod:`rtfin_cli.lag.offsets` and :mod:`rtfin_cli.lag.warehouse` collect
raw numbers, :mod:`rtfin_cli.lag.snapshot` feeds them through :class:`Window` and :func:`row_state`.

State rules (README documents them). Ages and time lags are wall-clock seconds measured on the event
clock (:mod:`rtfin_cli.lag.source`: the replay's clock in the demo), never clamped: negative means the
event time lies ahead of that clock.

Per consumer group × topic row:

* ``STALLED`` – some partition has had messages waiting (lag > 0) with its committed offset unchanged for
  the whole window, or unchanged for the ``settle`` seconds it was watched while its oldest waiting message
  is older than the window. Membership does not matter: a job that commits through Kafka transactions
  without joining the group (the sentiment job) is judged by the progress of its committed offsets. A
  caught-up group on a quiet topic never stalls: its lag is 0.
* ``LAGGING`` – not stalled, but total lag > max_lag or the oldest unconsumed message is older than max_age.
* ``OK``      – caught up, or behind by less than both thresholds and still moving.
* ``MISSING`` – a requested group or topic does not exist; ``UNREACHABLE`` – it could not be read.

Pipeline stages add ``IDLE``: a producer whose source is quiet (market closed, no news) or a table with no
rows yet — nothing is wrong, nothing is coming. The severity order (worst last) is IDLE, OK, LAGGING,
STALLED, MISSING, UNREACHABLE; a summary reports the worst state of any stage.
"""

from __future__ import annotations

import re
import time
from collections import deque
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any

from rtfin_cli.errors import UsageError


class LagState(StrEnum):
    """The state of a row, a partition, a pipeline stage or a table (rules in the module docstring)."""

    IDLE = "IDLE"  # the source is quiet: nothing is wrong, nothing is coming
    OK = "OK"
    LAGGING = "LAGGING"
    STALLED = "STALLED"
    MISSING = "MISSING"
    UNREACHABLE = "UNREACHABLE"  # the service, or the group's offsets, could not be read


IDLE, OK, LAGGING, STALLED = LagState.IDLE, LagState.OK, LagState.LAGGING, LagState.STALLED
MISSING, UNREACHABLE = LagState.MISSING, LagState.UNREACHABLE
STATES = tuple(LagState)  # in order of severity
_SEVERITY = {state: i for i, state in enumerate(STATES)}

_DURATION = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*(ms|s|m|h)?\s*$")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}


def parse_duration(text: str | float, name: str = "duration") -> float:
    """'2s', '500ms', '1.5m', '1h' or a plain number of seconds → seconds (> 0)."""
    if isinstance(text, int | float):
        seconds = float(text)
    else:
        m = _DURATION.match(text)
        if m is None:
            raise UsageError(
                f"invalid {name} '{text}'", "Use a number with an optional unit: 500ms, 2s, 1.5m, 1h."
            )
        seconds = float(m.group(1)) * _UNITS[m.group(2)]
    if seconds <= 0:
        raise UsageError(f"{name} must be positive (got '{text}')")
    return seconds


@dataclass
class Thresholds:
    max_lag: int | None = None  # messages per group × topic
    max_age_s: float | None = None  # seconds of time lag

    def exceeded(self, lag: int, time_lag_s: float) -> list[str]:
        out = []
        if self.max_lag is not None and lag > self.max_lag:
            out.append(f"lag {lag} > {self.max_lag}")
        if self.max_age_s is not None and time_lag_s > self.max_age_s:
            out.append(f"time lag {time_lag_s:.1f}s > {self.max_age_s:g}s")
        return out


@dataclass
class PartitionLag:
    partition: int
    committed: int | None  # None: the group has no committed offset here
    end: int  # high watermark (next offset to be written)
    lag: int
    time_lag_s: float  # clock − event time of the message at the committed offset; 0 when caught up
    consume_rate: float | None = None  # messages/s over the window (None until two samples)
    produce_rate: float | None = None
    trend: str = ""  # growing | shrinking | steady | '' (unknown yet)
    eta_s: float | None = None  # time to drain at the current net rate
    stalled_s: float = 0.0  # how long messages have waited with the committed offset unchanged
    state: LagState = OK


@dataclass
class GroupLag:
    """One row of the view: a consumer group on a topic."""

    group: str
    topic: str
    members: int = 0
    group_state: str = ""  # Kafka's own: Stable, Empty, PreparingRebalance, Dead, ...
    partitions: list[PartitionLag] = field(default_factory=list)
    lag: int = 0
    time_lag_s: float = 0.0
    consume_rate: float | None = None
    produce_rate: float | None = None
    trend: str = ""
    eta_s: float | None = None
    state: LagState = OK
    detail: str = ""


@dataclass
class Stage:
    """One pipeline stage by name, with the lag or data age that tells whether it keeps up."""

    name: str
    source: str  # topic, group or table it is measured on
    state: LagState
    lag: int | None = None
    time_lag_s: float | None = None
    age_s: float | None = None  # clock − newest event time (negative: ahead of the clock)
    newest: float | None = None  # epoch seconds of the newest event
    detail: str = ""


@dataclass
class TableAge:
    database: str
    table: str
    column: str
    state: LagState  # OK | IDLE (no rows) | MISSING | UNREACHABLE (the query failed)
    rows: int | None = None
    newest: float | None = None
    age_s: float | None = None
    detail: str = ""


@dataclass
class Hop:
    """p50/p95 (wall seconds) of one hop of a pipeline over the rows loaded within the window."""

    pipeline: str
    hop: str  # "from → to"
    rows: int
    p50_s: float | None
    p95_s: float | None


@dataclass
class Freshness:
    """One reading of the warehouse: whether it answered, and the data age of each table."""

    status: str  # ok | unreachable
    endpoint: str
    error: str = ""
    tables: list[TableAge] = field(default_factory=list)


@dataclass
class Snapshot:
    taken_at: float
    took_s: float
    kafka: dict[str, Any]  # bootstrap, status (ok | unreachable), error
    groups: list[GroupLag]
    clock: dict[str, Any] = field(default_factory=dict)  # the event clock (SourceClock.as_dict())
    stages: list[Stage] = field(default_factory=list)
    warehouse: Freshness | None = None  # None: the pipeline view is off
    thresholds: Thresholds = field(default_factory=Thresholds)
    exceeded: list[str] = field(default_factory=list)
    hops: list[Hop] = field(default_factory=list)  # with --hops

    def totals(self) -> dict[str, Any]:
        counts = {s: 0 for s in STATES}
        for g in self.groups:
            counts[g.state] += 1
        return {
            "rows": len(self.groups),
            "groups": len({g.group for g in self.groups}),
            "lag": sum(g.lag for g in self.groups),
            "max_time_lag_s": max((g.time_lag_s for g in self.groups), default=0.0),
            "states": {k: v for k, v in counts.items() if v},
        }

    def as_dict(self, wide: bool = True) -> dict[str, Any]:
        doc = asdict(self)
        doc["warehouse"] = doc["warehouse"] or {}
        doc["totals"] = self.totals()
        if not wide:
            for g in doc["groups"]:
                g.pop("partitions")
        return doc


def worst(states: list[LagState]) -> LagState:
    return max(states, key=_SEVERITY.__getitem__, default=OK)


def verdict(doc: dict[str, Any]) -> LagState:
    """The worst state of a snapshot's stages and rows (its ``as_dict()`` form, as `--json` prints it):
    UNREACHABLE when Kafka is; never OK while any stage is MISSING or STALLED."""
    if (doc.get("kafka") or {}).get("status", "ok") != "ok":
        return UNREACHABLE
    states = [s.get("state") for s in [*doc.get("stages", []), *doc.get("groups", [])]]
    return worst([LagState(s) if s in _SEVERITY else UNREACHABLE for s in states])


@dataclass
class _Sample:
    t: float
    committed: int
    end: int


class Window:
    """Per-partition history over a sliding window: rates, trend, drain ETA and stall time.

    Keys are ``(group, topic, partition)``; producer-only keys use group ``""``.
    """

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._hist: dict[tuple[str, str, int], deque[_Sample]] = {}
        self._waiting: dict[tuple[str, str, int], tuple[int, float]] = {}  # key → (committed, since)

    def observe(self, key: tuple[str, str, int], t: float, committed: int, end: int) -> None:
        hist = self._hist.setdefault(key, deque())
        hist.append(_Sample(t, committed, end))
        # keep one sample at or before the window start so rates cover the whole window
        while len(hist) > 2 and hist[1].t <= t - self.seconds:
            hist.popleft()
        if end - committed > 0:
            prev = self._waiting.get(key)
            if prev is None or prev[0] != committed:
                self._waiting[key] = (committed, t)
        else:
            self._waiting.pop(key, None)

    def stalled_s(self, key: tuple[str, str, int], now: float) -> float:
        """Seconds the committed offset has not moved while messages waited (0 when not waiting)."""
        prev = self._waiting.get(key)
        return now - prev[1] if prev else 0.0

    def delta(self, key: tuple[str, str, int]) -> tuple[float, int, int] | None:
        """(seconds, committed advance, end advance) across the window, None with fewer than two samples."""
        hist = self._hist.get(key)
        if not hist or len(hist) < 2 or hist[-1].t <= hist[0].t:
            return None
        first, last = hist[0], hist[-1]
        return last.t - first.t, last.committed - first.committed, last.end - first.end

    def forget_missing(self, seen: set[tuple[str, str, int]]) -> None:
        """Drop history of partitions no longer reported (producer keys, group '', are kept)."""
        for key in [k for k in self._hist if k not in seen and k[0]]:
            self._hist.pop(key, None)
            self._waiting.pop(key, None)


def rates(dt: float, consumed: int, produced: int, lag: int) -> tuple[float, float, str, float | None]:
    """(consume rate, produce rate, trend, drain ETA) from advances over ``dt`` seconds."""
    consume, produce = max(consumed, 0) / dt, max(produced, 0) / dt
    growth = produced - consumed  # lag now − lag at window start
    trend = "growing" if growth > 0 else "shrinking" if growth < 0 else "steady"
    net = consume - produce
    eta = lag / net if lag > 0 and net > 0 else (0.0 if lag == 0 else None)
    return consume, produce, trend, eta


def partition_state(
    p: PartitionLag, window_s: float, th: Thresholds, settle_s: float | None = None
) -> LagState:
    """STALLED after a whole window without progress, or after ``settle_s`` watched without progress when
    the oldest waiting message is older than the window (a consumer that was stuck before the view began)."""
    if p.lag <= 0:
        return OK
    if p.stalled_s >= window_s:
        return STALLED
    if settle_s is not None and p.stalled_s >= settle_s and p.time_lag_s >= window_s:
        return STALLED
    if th.exceeded(p.lag, p.time_lag_s):
        return LAGGING
    return OK


def row_state(row: GroupLag, window_s: float, th: Thresholds) -> LagState:
    """The state rules of the module docstring, applied to a row whose partitions are filled in."""
    if any(p.state == STALLED for p in row.partitions):
        return STALLED
    if th.exceeded(row.lag, row.time_lag_s):
        return LAGGING
    return OK


def now() -> float:
    return time.time()
