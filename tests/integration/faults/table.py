"""The reliability table of docs/reliability.md from tests/artifacts/faults.json: ``python -m tests.integration.faults.table``."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

ARTIFACT = Path(__file__).resolve().parents[2] / "artifacts" / "faults.json"
HEADER = (
    "| fault | records served | expected in marts | in marts | duplicates (marts / raw FINAL) "
    "| lost in flight | articles scored (copies) | recovery | `rtfin lag --once --max-lag 0` |\n"
    "|---|---:|---:|---:|---:|---:|---:|---:|---|"
)


def _scored(r: dict[str, Any]) -> str:
    if "articles_scored" not in r:
        return "–"
    return f"{r['articles_scored']}/{r['articles_emitted']} (max {r['sentiment_copies_max']})"


def _lag(r: dict[str, Any]) -> str:
    ok = r["lag_once_exit"] == 0 and all(s in ("OK", "EMPTY") for s in r["lag_states"].values())
    return f"{'OK' if ok else 'NOT OK'} (exit {r['lag_once_exit']})"


def table(doc: dict[str, Any]) -> str:
    rows = [HEADER]
    for r in doc["faults"]:
        rows.append(
            f"| {r['fault']} | {r['records_emitted']} | {r['records_expected_in_marts']} | {r['records_in_marts']} "
            f"| {r['duplicates_marts']} / {r['duplicates_raw_final']} | {r['lost_in_flight']} | {_scored(r)} "
            f"| {r['recovery_s']:.1f} s | {_lag(r)} |"
        )
    return "\n".join(rows)


def main(argv: list[str]) -> int:
    doc = json.loads(Path(argv[0] if argv else ARTIFACT).read_text())
    print(table(doc))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
