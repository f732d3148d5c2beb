"""Paired rounds in fresh processes: the measuring rule every ratio in ``make bench`` follows.

``alternate(value, baseline)`` runs the measured side and its baseline turn about, each round of each
side in a new ``python -m bench.paired`` process (no warm caches, no JIT or allocator state shared
between sides), and returns the median of each side over the rounds.
"""

from __future__ import annotations

import importlib
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
MARK = "@@bench-result@@ "


def in_fresh_process(target: str, timeout_s: float = 1800, **kwargs: Any) -> dict[str, Any]:
    """Run ``module:function(**kwargs)`` in a new interpreter; return the dict it returns."""
    proc = subprocess.run(
        [sys.executable, "-m", "bench.paired", target, json.dumps(kwargs)],
        cwd=ROOT, capture_output=True, text=True, timeout=timeout_s,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith(MARK)]
    if proc.returncode or not lines:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-5:]
        raise RuntimeError(f"{target} failed (exit {proc.returncode}): " + " | ".join(tail))
    result: dict[str, Any] = json.loads(lines[-1][len(MARK) :])
    return result


def alternate(
    value: str, baseline: str, metric: str, rounds: int = 3, **kwargs: Any
) -> tuple[float, float, list[dict[str, Any]]]:
    """Median ``metric`` of ``value`` and of ``baseline`` over ``rounds`` alternating fresh-process rounds.

    Odd rounds start with the baseline so neither side always runs on a warmer machine.
    """
    seen: list[dict[str, Any]] = []
    for i in range(rounds):
        order = [("value", value), ("baseline", baseline)]
        for side, target in order if i % 2 == 0 else order[::-1]:
            seen.append({"round": i, "side": side, **in_fresh_process(target, **kwargs)})
    med = {s: statistics.median(r[metric] for r in seen if r["side"] == s) for s in ("value", "baseline")}
    return med["value"], med["baseline"], seen


def _main(target: str, kwargs_json: str) -> None:
    module, _, func = target.partition(":")
    result = getattr(importlib.import_module(module), func)(**json.loads(kwargs_json))
    print(MARK + json.dumps(result), flush=True)


if __name__ == "__main__":
    _main(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else "{}")
