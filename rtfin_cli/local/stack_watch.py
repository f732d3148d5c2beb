"""The local stack's two helper processes, run as ``python -m rtfin_cli.local.stack watch|refresh``.

- ``watch``: every few seconds, restart any stage that `up` started and that has died, with exponential
  backoff (1 s, 2 s, 4 s ... at most 60 s) and at most ``MAX_RESTARTS`` restarts in ``WINDOW_S``; past
  that the stage is marked failed with its last log line. A stage whose command turns out not to be
  implemented is marked skipped instead.
- ``refresh``: run ``rtfin transform run`` (dbt build of the models, in-process) every ``--interval`` s.

Both log one line per event to stdout (the supervisor sends it to ``<data_dir>/logs/<name>.log``) and
exit 0 on SIGTERM.
"""

from __future__ import annotations

import argparse
import os
import signal
import time
from pathlib import Path
from types import FrameType

from rtfin_cli.errors import RtfinError
from rtfin_cli.local.stack import (
    DAEMON,
    PROCESS,
    Stack,
    StepState,
    last_error,
    not_implemented_note,
)

TICK_S = 2.0
MAX_RESTARTS = 5
WINDOW_S = 600.0
MAX_BACKOFF_S = 60.0

_stopping = False


def _on_term(signum: int, frame: FrameType | None) -> None:
    global _stopping
    _stopping = True


def log(msg: str) -> None:
    print(f"{time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())} {msg}", flush=True)


def _sleep(seconds: float) -> None:
    end = time.monotonic() + seconds
    while not _stopping and time.monotonic() < end:
        time.sleep(min(0.5, end - time.monotonic()))


def _reap() -> None:
    """Collect exited children (restarted stages are our children) so they never linger as zombies."""
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def backoff(n: int) -> float:
    """Delay before the (n+1)-th restart within the window."""
    return float(min(MAX_BACKOFF_S, 2**n))


def check_once(stack: Stack, now: float) -> None:
    """One pass: schedule or perform the restart of every dead stage that should be running."""
    for step in stack.steps:
        if step.kind not in (DAEMON, PROCESS) or step.name == "watchdog":
            continue
        st = stack.state(step.name)
        if st.state != "running" or stack.service(step).pid() is not None:
            continue
        output = stack.log_since(step, st.log_offset)
        note = not_implemented_note(output, step)
        if note:
            stack.set_state(step.name, StepState("skipped", note=note, since=now))
            log(f"{step.name}: {note}; skipped")
            continue
        recent = [t for t in st.restarts if now - t < WINDOW_S]
        if len(recent) >= MAX_RESTARTS:
            why = last_error(stack.service(step).log_file) or "exited"
            note = f"gave up after {len(recent)} restarts: {why}"
            stack.set_state(step.name, StepState("failed", note=note, since=now, restarts=st.restarts))
            log(f"{step.name}: crashed {len(recent)} times in {WINDOW_S:.0f}s; giving up ({why})")
            continue
        if st.next_restart_at is None:
            st.next_restart_at = now + backoff(len(recent))
            stack.set_state(step.name, st)
            log(f"{step.name}: not running ({last_error(stack.service(step).log_file) or 'exited'}); "
                f"restart in {st.next_restart_at - now:.0f}s")  # fmt: skip
            continue
        if now < st.next_restart_at:
            continue
        with stack.lock():
            if stack.service(step).pid() is not None or stack.state(step.name).state != "running":
                continue  # `up` or `down` got there first
            try:
                outcome, detail = stack.start_step(step)
            except RtfinError as exc:
                outcome, detail = "failed", exc.message
            new = stack.state(step.name)
            new.restarts = [*recent, now]
            if outcome == "failed":  # counts as a crash: keep trying within the bound
                new.state, new.next_restart_at = "running", None
            stack.set_state(step.name, new)
            log(f"{step.name}: restart {len(new.restarts)}/{MAX_RESTARTS}: {outcome} {detail}")


def watch(data_dir: Path) -> int:
    log(f"watchdog up for {data_dir}")
    while not _stopping:
        _reap()
        stack = Stack.load(data_dir)
        if stack is None:
            log("no stack.json; nothing to watch")
            return 1
        try:
            check_once(stack, time.time())
        except Exception as exc:  # noqa: BLE001 - the watchdog itself must not die of one bad pass
            log(f"watchdog pass failed: {type(exc).__name__}: {exc}")
        _sleep(TICK_S)
    log("watchdog stopping")
    return 0


def refresh(interval: float, select: list[str]) -> int:
    """Rebuild the dbt models every ``interval`` seconds until SIGTERM.

    dbt runs in this process (``rtfin transform run`` through dbtRunner): a new interpreter importing dbt
    every 30 s cost the 2-core machine more CPU than the build itself.
    """
    from rtfin_cli.settings import load_settings
    from rtfin_cli.transform.run import run

    settings = load_settings().settings
    what = "rtfin transform run --no-freshness" + (f" --select {' '.join(select)}" if select else "")
    log(f"dbt refresher: `{what}` every {interval:g}s")
    while not _stopping:
        t0 = time.monotonic()
        try:
            out = run(settings, select=select or None, freshness=False)
            failed = [f"{n.name}: {n.status} {n.message}".strip() for n in out.build.problems()
                      if n.status != "skipped"]  # fmt: skip
            error = out.build.error or "; ".join(failed[:3])
        except RtfinError as exc:  # ClickHouse down, DDL failure: log it and try again next round
            out, error = None, exc.message
        took = time.monotonic() - t0
        if _stopping:
            break
        if out is not None and out.success:
            log(f"dbt build ok in {took:.1f}s" + (f" ({error})" if error else ""))
        else:
            log(f"dbt build failed in {took:.1f}s: {error}")
        _sleep(max(0.0, interval - took))
    log("dbt refresher stopping")
    return 0


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m rtfin_cli.local.stack")
    sub = parser.add_subparsers(dest="cmd", required=True)
    sub.add_parser("watch").add_argument(
        "--data-dir", default=os.environ.get("RTFIN__LOCAL__DATA_DIR", ".rtfin")
    )
    ref = sub.add_parser("refresh")
    ref.add_argument("--interval", type=float, default=30.0)
    ref.add_argument("--select", nargs="*", default=[])
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, _on_term)
    signal.signal(signal.SIGINT, _on_term)
    if args.cmd == "watch":
        return watch(Path(args.data_dir).resolve())
    return refresh(args.interval, args.select)
