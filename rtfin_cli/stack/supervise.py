"""The whole pipeline on one machine: the plan's stages started in order with health checks, then stopped.

``Stack`` runs each stage through its ``rtfin`` command as a supervised process and reports every start
and stop as an event to the caller's Reporter; it never prints. The watchdog (``rtfin local _watch``,
see watch.py) restarts crashed stages.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, NoReturn

from rtfin_cli.errors import ProcessError, UsageError
from rtfin_cli.local.supervisor import Service, ensure_port_free, port_open, port_owner, reap_group, wait_for
from rtfin_cli.report import Event, Reporter
from rtfin_cli.settings import RtfinSettings
from rtfin_cli.stack.plan import Step, StepKind, plan, stack_env
from rtfin_cli.stack.state import Outcome, State, StepState, last_error, write_json

PROCESS_GRACE_S = 4.0  # a long-running stage that survives this long after start counts as started
SECRET_FILES = ("clickhouse/password", "superset/admin_password", "superset/secret_key")


@dataclass
class Launch:
    """A start command running in the background."""

    proc: subprocess.Popen[bytes]
    scratch: Path
    offset: int
    started: float


def emit(reporter: Reporter, stage: str, outcome: Outcome, detail: str = "") -> None:
    """Report one stage's outcome (payload: the outcome word and its detail)."""
    reporter.emit(Event(outcome.kind, stage, {"outcome": str(outcome), "detail": detail}))


class Stack:
    """The local stack rooted at one data directory."""

    def __init__(self, data_dir: Path, steps: list[Step], env: dict[str, str], cwd: Path) -> None:
        self.data_dir = Path(data_dir).resolve()
        self.steps = steps
        self.env = env
        self.cwd = cwd
        self.run_dir = self.data_dir / "run"
        self.log_dir = self.data_dir / "logs"

    # -- construction / persistence ------------------------------------------------------------------
    @classmethod
    def from_settings(cls, s: RtfinSettings, speed: float | None = None, **opts: Any) -> Stack:
        env = stack_env(s, speed)
        return cls(Path(env["RTFIN__LOCAL__DATA_DIR"]), plan(s, **opts), env, Path.cwd())

    @classmethod
    def load(cls, data_dir: Path) -> Stack | None:
        """The stack last brought up in this data directory (None when `up` never ran there)."""
        try:
            doc = json.loads((Path(data_dir) / "run" / "stack.json").read_text())
            return cls(
                Path(data_dir), [Step.from_dict(d) for d in doc["steps"]], doc["env"], Path(doc["cwd"])
            )
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def save(self) -> None:
        doc = {"steps": [asdict(st) for st in self.steps], "env": self.env, "cwd": str(self.cwd)}
        write_json(self.run_dir / "stack.json", doc)

    def state(self, name: str) -> StepState:
        try:
            return StepState(**json.loads((self.run_dir / f"{name}.state.json").read_text()))
        except (OSError, ValueError, TypeError):
            return StepState()

    def set_state(self, name: str, st: StepState) -> None:
        write_json(self.run_dir / f"{name}.state.json", asdict(st))

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Serialises `up`, `down` and the watchdog's restarts in this data directory."""
        self.run_dir.mkdir(parents=True, exist_ok=True)
        with open(self.run_dir / "stack.lock", "w") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def service(self, step: Step) -> Service:
        return Service(step.name, self.data_dir, step.ports[0] if step.ports else None)

    def step(self, name: str) -> Step:
        for st in self.steps:
            if st.name == name:
                return st
        raise UsageError(f"unknown service '{name}'", f"Services: {', '.join(s.name for s in self.steps)}.")

    def child_env(self) -> dict[str, str]:
        return {**os.environ, **self.env}

    def redact(self, text: str) -> str:
        """``text`` with the local services' generated secrets masked."""
        for rel in SECRET_FILES:
            try:
                value = (self.data_dir / rel).read_text().strip()
            except OSError:
                continue
            if len(value) >= 8:
                text = text.replace(value, "********")
        return text

    def log_since(self, step: Step, offset: int) -> str:
        try:
            with open(self.service(step).log_file, "rb") as fh:
                fh.seek(offset)
                return fh.read().decode(errors="replace")
        except OSError:
            return ""

    # -- up --------------------------------------------------------------------------------------------
    def up(self, reporter: Reporter) -> None:
        """Start every stage in order; running ones are reused. Raises ProcessError on the first failure.

        Servers marked ``early`` (Superset: a minute or more on first start) begin starting at once, in
        parallel with the stages before them; their health check is awaited at their place in the order.
        """
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with self.lock():
            self.save()
            early = {st.name: self._launch(st) for st in self.steps if st.early and self._startable(st)}
            try:
                for step in self.steps:
                    outcome, detail = self._start_in_turn(step, early.pop(step.name, None))
                    emit(reporter, step.name, outcome, detail)
            finally:
                for launch in early.values():  # `up` failed before their turn: stop waiting for them
                    launch.proc.terminate()
                    launch.proc.wait(30)

    def _start_in_turn(self, step: Step, launch: Launch | None) -> tuple[Outcome, str]:
        """Start a stage (or await its early launch); a start's detail ends with how long it took."""
        t0 = time.monotonic()
        if launch is not None:
            outcome, detail = self._finish(step, launch)
            t0 = launch.started
        else:
            outcome, detail = self.start_step(step)
        if outcome in (Outcome.STARTED, Outcome.DONE):
            detail = f"{detail} ({time.monotonic() - t0:.1f}s)".strip()
        return outcome, detail

    def _startable(self, step: Step) -> bool:
        """A server that is not running yet (its ports are checked now: a busy one fails `up` at once)."""
        if step.kind != StepKind.DAEMON or self.service(step).pid() is not None:
            return False
        for port in step.ports:
            ensure_port_free(port, step.name)
        return True

    def start_step(self, step: Step) -> tuple[Outcome, str]:
        """Start one stage: (started | reused | done, detail); ProcessError when it fails."""
        svc = self.service(step)
        if step.covered_by and Service(step.covered_by, self.data_dir).pid() is not None:
            return Outcome.REUSED, f"kept up to date by the running {step.covered_by} service"
        if step.kind != StepKind.ONESHOT and (pid := svc.pid()) is not None:
            if self.state(step.name).state != State.RUNNING:
                self.set_state(step.name, StepState(State.RUNNING, since=time.time()))
            return Outcome.REUSED, f"pid {pid}"
        for port in step.ports:
            ensure_port_free(port, step.name)
        svc.log_file.parent.mkdir(parents=True, exist_ok=True)
        offset = svc.log_file.stat().st_size if svc.log_file.exists() else 0
        if step.kind == StepKind.PROCESS:
            return self._start_process(step, svc, offset)
        return self._finish(step, self._launch(step, offset))

    def _start_process(self, step: Step, svc: Service, offset: int) -> tuple[Outcome, str]:
        deadline = time.monotonic() + PROCESS_GRACE_S
        try:
            pid = svc.start(
                step.command(), env=self.child_env(), cwd=self.cwd,
                ready=lambda: time.monotonic() > deadline, timeout=PROCESS_GRACE_S + 30,
            )  # fmt: skip
        except ProcessError as exc:
            self._failed(step, self.log_since(step, offset), str(exc))
        self.set_state(step.name, StepState(State.RUNNING, since=time.time(), log_offset=offset))
        return Outcome.STARTED, f"pid {pid}"

    def _launch(self, step: Step, offset: int | None = None) -> Launch:
        """Start a daemon's start command or a one-shot stage; output to a scratch file until it ends."""
        log = self.service(step).log_file
        log.parent.mkdir(parents=True, exist_ok=True)
        if offset is None:
            offset = log.stat().st_size if log.exists() else 0
        scratch = log.with_suffix(".starting")
        with open(scratch, "wb") as out:
            proc = subprocess.Popen(
                step.command(), stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                env=self.child_env(), cwd=self.cwd,
            )  # fmt: skip
        return Launch(proc, scratch, offset, time.monotonic())

    def _finish(self, step: Step, launch: Launch) -> tuple[Outcome, str]:
        """Wait for a launched command, append its output to the stage's log, then judge the outcome."""
        svc = self.service(step)
        code: int | None = None
        try:
            code = launch.proc.wait(max(1.0, step.timeout - (time.monotonic() - launch.started)))
        except subprocess.TimeoutExpired:
            launch.proc.kill()
            launch.proc.wait()
        self._append_output(step, launch)
        if code != 0:
            why = f"timed out after {step.timeout:.0f}s" if code is None else f"exit code {code}"
            self._failed(step, self.log_since(step, launch.offset), why)
        if step.kind == StepKind.DAEMON:
            self.set_state(step.name, StepState(State.RUNNING, since=time.time(), log_offset=launch.offset))
            return Outcome.STARTED, f"pid {svc.pid()}" + (f" port {step.ports[0]}" if step.ports else "")
        self.set_state(step.name, StepState(State.DONE, since=time.time()))
        return Outcome.DONE, ""

    def _append_output(self, step: Step, launch: Launch) -> None:
        """Move a launched command's output to the stage's log, local secrets redacted (a first Superset
        start prints its new admin password)."""
        raw = launch.scratch.read_bytes() if launch.scratch.exists() else b""
        launch.scratch.unlink(missing_ok=True)
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        with open(self.service(step).log_file, "a") as log:
            log.write(f"--- {stamp} rtfin {' '.join(step.argv)}\n{self.redact(raw.decode(errors='replace'))}")

    def _failed(self, step: Step, output: str, why: str) -> NoReturn:
        self.set_state(step.name, StepState(State.FAILED, note=why, since=time.time()))
        tail = " | ".join(line.strip() for line in output.strip().splitlines()[-3:])
        raise ProcessError(
            f"{step.name} ({step.what}) failed to start: {why}: {tail}",
            f"See `rtfin local logs {step.name}`; stop what runs with `rtfin local down`.",
        )

    # -- down ------------------------------------------------------------------------------------------
    def down(self, reporter: Reporter, timeout: float = 30.0, purge: Sequence[Path] = ()) -> None:
        """Stop the watchdog, then every stage in reverse order (SIGTERM, SIGKILL after ``timeout``);
        then delete the ``purge`` paths (see :meth:`purge_paths`)."""
        with self.lock():
            for name in self._stop_order():
                self._stop(name, reporter, timeout)
            busy = [p for st in self.steps for p in st.ports if not wait_for(_port_closed(p), 10)]
            if busy:
                holders = ", ".join(f"{p} ({port_owner(p) or 'unknown'})" for p in busy)
                raise ProcessError(f"ports still in use after stopping the stack: {holders}")
            for path in purge:
                shutil.rmtree(path, ignore_errors=True)
                emit(reporter, str(path), Outcome.PURGED)

    def _stop_order(self) -> list[str]:
        """The watchdog, the stages in reverse, then services started outside `up` in this data dir
        (e.g. `rtfin local kafka start`)."""
        names = [st.name for st in self.steps]
        order = ["watchdog"] + [n for n in reversed(names) if n != "watchdog"]
        return order + sorted(p.stem for p in self.run_dir.glob("*.pid") if p.stem not in order)

    def _stop(self, name: str, reporter: Reporter, timeout: float) -> None:
        step = next((st for st in self.steps if st.name == name), Step(name, StepKind.PROCESS, ()))
        svc = self.service(step)
        pid = svc.pid()
        if pid is not None:
            svc.stop(timeout)
            left = reap_group(pid, timeout=10.0)
            detail = f"pid {pid}" + (f" (killed {left} leftover child processes)" if left else "")
            emit(reporter, name, Outcome.STOPPED, detail)
        if step.kind != StepKind.ONESHOT and self.state(name).state != State.STOPPED:
            self.set_state(name, StepState(State.STOPPED, since=time.time()))

    def purge_paths(self, s: RtfinSettings) -> list[Path]:
        """The data directory plus the sentiment checkpoints when they live in a local directory."""
        paths = [self.data_dir]
        ckpt = s.sentiment.local_checkpoint_dir(self.cwd)
        if ckpt is not None and ckpt.exists() and not ckpt.is_relative_to(self.data_dir):
            paths.append(ckpt)
        return paths

    # -- status ----------------------------------------------------------------------------------------
    def status(self) -> list[dict[str, Any]]:
        """One dict per stage: state, pid, port, uptime, restarts, note, last error, log path."""
        watchdog_alive = Service("watchdog", self.data_dir).pid() is not None
        return [self._row(step, watchdog_alive) for step in self.steps]

    def _row(self, step: Step, watchdog_alive: bool) -> dict[str, Any]:
        svc = self.service(step)
        st = self.state(step.name)
        pid = svc.pid() if step.kind != StepKind.ONESHOT else None
        info = svc.status()
        if pid is not None:
            state = State.RUNNING
        elif st.state == State.RUNNING:
            state = State.RESTARTING if watchdog_alive else State.CRASHED
        elif st.state == State.STOPPED and step.kind == StepKind.ONESHOT:
            state = State.NOT_RUN
        else:
            state = st.state
        return {
            "service": step.name, "kind": str(step.kind), "what": step.what, "state": str(state), "pid": pid,
            "port": step.ports[0] if step.ports else None,
            "uptime_s": round(info.uptime_s, 1) if pid is not None and info.uptime_s else None,
            "restarts": len(st.restarts), "note": st.note,
            "last_error": last_error(svc.log_file) if state in (State.RUNNING, State.FAILED, State.CRASHED) else "",
            "log": str(svc.log_file),
        }  # fmt: skip

    def lag_summary(self, timeout: float = 60.0) -> dict[str, Any]:
        """`rtfin lag --once --json` against the stack: its exit code and snapshot, or the error."""
        try:
            proc = subprocess.run([sys.executable, "-m", "rtfin_cli", "lag", "--once", "--json"],
                                  capture_output=True, text=True, env=self.child_env(), cwd=self.cwd,
                                  timeout=timeout)  # fmt: skip
        except subprocess.TimeoutExpired:
            return {"error": f"rtfin lag timed out after {timeout:.0f}s"}
        try:
            doc = json.loads(proc.stdout.strip().splitlines()[-1])
        except (ValueError, IndexError):
            err = (proc.stderr.strip().splitlines() or [f"exit code {proc.returncode}"])[0]
            return {"error": err}
        return {"exit_code": proc.returncode, "snapshot": doc}


def _port_closed(port: int) -> Callable[[], bool]:
    return lambda: not port_open(port)
