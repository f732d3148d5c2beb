"""The watchdog (``rtfin local _watch``): restart any stage that `up` started and that has died.

Every ``TICK_S`` it looks at each daemon and process stage stored as running: a dead one is restarted
with exponential backoff (1 s, 2 s, 4 s ... at most ``MAX_BACKOFF_S``), at most ``MAX_RESTARTS`` times
in ``WINDOW_S``; past that the stage is marked failed with its last log line. Each decision is reported
as a message event of stage ``watchdog``.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from rtfin_cli.errors import RtfinError
from rtfin_cli.report import NullReporter, Reporter, message
from rtfin_cli.stack.plan import Step, StepKind
from rtfin_cli.stack.state import Outcome, State, StepState, last_error
from rtfin_cli.stack.stopflag import StopFlag
from rtfin_cli.stack.supervise import Stack

STAGE = "watchdog"
TICK_S = 2.0
MAX_RESTARTS = 5
WINDOW_S = 600.0
MAX_BACKOFF_S = 60.0


def backoff(n: int) -> float:
    """Delay before the (n+1)-th restart within the window."""
    return float(min(MAX_BACKOFF_S, 2**n))


def _reap() -> None:
    """Collect exited children (restarted stages are our children) so they never linger as zombies."""
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def check_once(stack: Stack, now: float, reporter: Reporter | None = None) -> None:
    """One pass: schedule or perform the restart of every dead stage that should be running."""
    rep = reporter or NullReporter()
    for step in stack.steps:
        if step.kind not in (StepKind.DAEMON, StepKind.PROCESS) or step.name == STAGE:
            continue
        st = stack.state(step.name)
        if st.state != State.RUNNING or stack.service(step).pid() is not None:
            continue
        _check_dead(stack, step, st, now, rep)


def _check_dead(stack: Stack, step: Step, st: StepState, now: float, rep: Reporter) -> None:
    """A dead stage: restart it when its restart is due; else give up past the bound or schedule one."""
    recent = [t for t in st.restarts if now - t < WINDOW_S]
    if st.next_restart_at is not None and len(recent) < MAX_RESTARTS:
        if now >= st.next_restart_at:
            _restart(stack, step, recent, now, rep)
        return
    why = last_error(stack.service(step).log_file) or "exited"
    if len(recent) >= MAX_RESTARTS:
        note = f"gave up after {len(recent)} restarts: {why}"
        stack.set_state(step.name, StepState(State.FAILED, note=note, since=now, restarts=st.restarts))
        message(rep, STAGE, f"{step.name}: crashed {len(recent)} times in {WINDOW_S:.0f}s; giving up ({why})")
    else:
        st.next_restart_at = now + backoff(len(recent))
        stack.set_state(step.name, st)
        message(rep, STAGE, f"{step.name}: not running ({why}); restart in {st.next_restart_at - now:.0f}s")


def _restart(stack: Stack, step: Step, recent: list[float], now: float, rep: Reporter) -> None:
    with stack.lock():
        if stack.service(step).pid() is not None or stack.state(step.name).state != State.RUNNING:
            return  # `up` or `down` got there first
        try:
            outcome, detail = stack.start_step(step)
        except RtfinError as exc:
            outcome, detail = Outcome.FAILED, exc.message
        new = stack.state(step.name)
        new.restarts = [*recent, now]
        if outcome == Outcome.FAILED:  # counts as a crash: keep trying within the bound
            new.state, new.next_restart_at = State.RUNNING, None
        stack.set_state(step.name, new)
        message(rep, STAGE, f"{step.name}: restart {len(new.restarts)}/{MAX_RESTARTS}: {outcome} {detail}")


def watch(data_dir: Path, reporter: Reporter, stop: StopFlag) -> int:
    """Check the stack in ``data_dir`` every ``TICK_S`` until ``stop``; 1 when it was never brought up."""
    message(reporter, STAGE, f"watchdog up for {data_dir}")
    while not stop.stopping:
        _reap()
        stack = Stack.load(data_dir)
        if stack is None:
            message(reporter, STAGE, "no stack.json; nothing to watch")
            return 1
        try:
            check_once(stack, time.time(), reporter)
        except Exception as exc:  # noqa: BLE001 - the watchdog itself must not die of one bad pass
            message(reporter, STAGE, f"watchdog pass failed: {type(exc).__name__}: {exc}")
        stop.sleep(TICK_S)
    message(reporter, STAGE, "watchdog stopping")
    return 0
