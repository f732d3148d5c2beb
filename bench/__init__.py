"""Benchmarks: each module ``bench/bench_*.py`` exposes ``run() -> list[Result]``; every figure is a ratio
against a baseline measured side by side in the same run (absolute times vary on shared machines)."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class Result:
    name: str
    value: float
    unit: str
    baseline: float | None = None
    baseline_name: str = ""
    target: str = ""
    extra: dict[str, Any] = field(default_factory=dict)
    goal: float | None = None  # the number the target names: a least ratio, or a most value if ``at_most``
    at_most: bool = False

    @property
    def passed(self) -> bool | None:
        """Whether the target is met: ratio >= goal, or value <= goal when ``at_most``; None without a goal."""
        if self.goal is None:
            return None
        if self.at_most:
            return self.value <= self.goal
        return self.ratio is not None and self.ratio >= self.goal

    @property
    def ratio(self) -> float | None:
        return self.value / self.baseline if self.baseline else None

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ratio": self.ratio, "pass": self.passed}


def timed(fn: Callable[[], Any], repeat: int = 3) -> float:
    """Median wall seconds of ``fn`` over ``repeat`` runs."""
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)
