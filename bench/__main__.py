"""`make bench`: run every bench/bench_*.py (or those named on the command line), print a table of
ratios against same-run baselines, and write bench/results.json. ``python -m bench --table`` prints
results.json as the Markdown table of docs/benchmarks.md."""

from __future__ import annotations

import importlib
import json
import pkgutil
import sys
import time
import traceback
from pathlib import Path
from typing import Any

from bench import Result

HERE = Path(__file__).resolve().parent


def _num(x: float) -> str:
    return f"{x:,.0f}" if abs(x) >= 1000 else f"{x:.3g}"


def table(results: dict[str, dict[str, Any]]) -> str:
    """The Markdown table of docs/benchmarks.md "The whole pass", from bench/results.json's results."""
    lines = [
        "| benchmark | value | baseline (same run) | ratio | target | met |",
        "|---|---:|---|---:|---|---|",
    ]
    for name, r in sorted(results.items()):
        base = f"{r['baseline_name']} ({_num(r['baseline'])})" if r.get("baseline") is not None else "–"
        ratio = f"{r['ratio']:.2f}" if r.get("ratio") is not None else "–"
        met = {True: "yes", False: "**no**", None: ""}[r.get("pass")]
        lines.append(
            f"| `{name}` | {_num(r['value'])} {r['unit']} | {base} | {ratio} | {r['target']} | {met} |"
        )
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    if argv == ["--table"]:
        print(table(json.loads((HERE / "results.json").read_text())["results"]))
        return 0
    names = argv or sorted(m.name for m in pkgutil.iter_modules([str(HERE)]) if m.name.startswith("bench_"))
    results: list[Result] = []
    failed = []
    for name in names:
        print(f"== {name}", flush=True)
        try:
            mod = importlib.import_module(f"bench.{name}")
            got = mod.run()
            results.extend(got)
            for r in got:
                print(
                    f"   {r.name}: {r.value:.4g} {r.unit}" + (f"  ratio {r.ratio:.3g}" if r.ratio else ""),
                    flush=True,
                )
        except Exception:  # noqa: BLE001 - one failing benchmark must not hide the others
            failed.append(name)
            traceback.print_exc()
    print()
    print(f"{'benchmark':48} {'value':>12} {'unit':10} {'baseline':>12} {'ratio':>8}  target")
    for r in results:
        base = f"{r.baseline:.4g}" if r.baseline else "-"
        ratio = f"{r.ratio:.3g}" if r.ratio else "-"
        verdict = {True: "pass", False: "FAIL", None: ""}[r.passed]
        print(f"{r.name:48} {r.value:12.4g} {r.unit:10} {base:>12} {ratio:>8}  {r.target} {verdict}")
    out = HERE / "results.json"
    previous = json.loads(out.read_text()) if out.exists() else {}
    merged = {**previous.get("results", {}), **{r.name: r.as_dict() for r in results}}
    out.write_text(json.dumps({"updated": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "results": merged},
                              indent=2, sort_keys=True) + "\n")  # fmt: skip
    print(f"\nwrote {out}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
