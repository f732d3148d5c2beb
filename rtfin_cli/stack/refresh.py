"""The dbt refresher (``rtfin local _refresh``): rebuild the selected dbt models every few seconds.

dbt runs in this process (``rtfin transform run`` through dbtRunner): a new interpreter importing dbt
every 30 s cost a 2-core machine more CPU than the build itself. Each round is reported as a message
event of stage ``dbt``; a failed round (ClickHouse down, a model error) is reported and retried.
"""

from __future__ import annotations

import time

from rtfin_cli.errors import RtfinError
from rtfin_cli.report import Reporter, message
from rtfin_cli.settings import RtfinSettings
from rtfin_cli.stack.stopflag import StopFlag

STAGE = "dbt"


def build_once(settings: RtfinSettings, select: list[str]) -> tuple[bool, str]:
    """One ``transform run`` without freshness checks: (success, the errors worth a note)."""
    from rtfin_cli.transform.run import run

    try:
        out = run(settings, select=select or None, freshness=False)
    except RtfinError as exc:  # ClickHouse down, DDL failure: say so and try again next round
        return False, exc.message
    failed = [f"{n.name}: {n.status} {n.message}".strip() for n in out.build.problems()
              if n.status != "skipped"]  # fmt: skip
    return out.success, out.build.error or "; ".join(failed[:3])


def refresh(
    settings: RtfinSettings, interval: float, select: list[str], reporter: Reporter, stop: StopFlag
) -> int:
    """Rebuild the dbt models every ``interval`` seconds until ``stop``."""
    what = "rtfin transform run --no-freshness" + (f" --select {' '.join(select)}" if select else "")
    message(reporter, STAGE, f"dbt refresher: `{what}` every {interval:g}s")
    while not stop.stopping:
        t0 = time.monotonic()
        ok, error = build_once(settings, select)
        took = time.monotonic() - t0
        if stop.stopping:
            break
        if ok:
            message(reporter, STAGE, f"dbt build ok in {took:.1f}s" + (f" ({error})" if error else ""))
        else:
            message(reporter, STAGE, f"dbt build failed in {took:.1f}s: {error}")
        stop.sleep(max(0.0, interval - took))
    message(reporter, STAGE, "dbt refresher stopping")
    return 0
