"""The whole pipeline on one machine: an ordered plan of stages, started with health checks, watched, stopped.

Every stage runs through its own ``rtfin`` command, as a supervised process (pid file under
``<data_dir>/run/``, log under ``<data_dir>/logs/``):

- ``daemon``: a ``rtfin local X start`` command that starts its own supervised server, waits until it is
  ready and returns (Kafka, ClickHouse, the market replay server, Superset);
- ``process``: a long-running command supervised here (producers, sentiment job, loader, dbt refresher);
- ``oneshot``: a command that runs to completion (topics, DDL, first dbt build, dashboard sync).

A stage whose command exits 2 with "not implemented yet" is skipped with a note, so ``up`` works while the
pipeline grows. The watchdog (``python -m rtfin_cli.local.stack watch``, see stack_watch.py) restarts
crashed stages with a bounded exponential backoff. Nothing here prints: callers get events and dicts.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from rtfin_cli.errors import ProcessError, UsageError
from rtfin_cli.local.supervisor import Service, ensure_port_free, port_open, port_owner, wait_for
from rtfin_cli.settings import RtfinSettings

DAEMON, PROCESS, ONESHOT = "daemon", "process", "oneshot"
NOT_IMPLEMENTED = "not implemented yet"
PROCESS_GRACE_S = 4.0  # a long-running stage that survives this long after start counts as started
REFRESH_INTERVAL_S = 30.0  # default period of the dbt refresher (the dashboard refreshes every 30 s)
REFRESH_SELECT = ("path:models/marts",)  # what the refresher rebuilds (tables and incremental models)
STACK_MODULE = "rtfin_cli.local.stack"
SECRET_FILES = ("clickhouse/password", "superset/admin_password", "superset/secret_key")
Event = Callable[[str, str, str], None]  # (stage, outcome, detail)


@dataclass(frozen=True)
class Step:
    """One stage of the local stack."""

    name: str
    kind: str
    argv: tuple[str, ...]
    issue: int | None = None
    ports: tuple[int, ...] = ()
    timeout: float = 300.0
    module: str = "rtfin_cli"  # `python -m module argv`
    what: str = ""
    covered_by: str | None = None  # a one-shot stage not re-run while this service runs
    early: bool = False  # a server whose start begins with `up` (awaited at its place in the order)

    def command(self) -> list[str]:
        return [sys.executable, "-m", self.module, *self.argv]

    @staticmethod
    def from_dict(d: dict[str, Any]) -> Step:
        return Step(**{**d, "argv": tuple(d["argv"]), "ports": tuple(d["ports"])})


def plan(
    s: RtfinSettings,
    *,
    with_dashboard: bool = False,
    no_model: bool = False,
    refresh_s: float = REFRESH_INTERVAL_S,
    replay_from: str | None = None,
) -> list[Step]:
    """The stages in start order (stop order is the reverse)."""
    loc = s.local

    def daemon(
        name: str, issue: int, ports: tuple[int, ...], what: str, ready_s: int, early: bool = False
    ) -> Step:
        argv: tuple[str, ...] = ("local", name, "start", "--timeout", str(ready_s))
        if name == "market" and replay_from:
            argv += ("--start", replay_from)
        return Step(name, DAEMON, argv, issue, ports, timeout=ready_s + 60.0, what=what, early=early)

    steps = [
        daemon("kafka", 3, (loc.kafka_port, loc.kafka_controller_port), "Apache Kafka (KRaft)", 240),
        daemon("clickhouse", 4, (loc.clickhouse_port,), "ClickHouse HTTP endpoint (chDB)", 180),
        daemon("market", 5, (loc.market_port,), "market replay server", 120),
        Step("topics", ONESHOT, ("topics", "create"), 3, timeout=120, what="Kafka topics"),
        Step("ddl", ONESHOT, ("transform", "ddl"), 7, timeout=180, what="ClickHouse raw tables"),
        Step("news", PROCESS, ("produce", "news"), 5, what="news producer"),
        Step("stocks", PROCESS, ("produce", "stocks"), 5, what="stocks producer"),
    ]
    if not no_model:
        steps.append(Step("sentiment", PROCESS, ("sentiment", "run"), 6, what="sentiment job (Spark local)"))
    steps += [
        Step("loader", PROCESS, ("transform", "load"), 7, what="Kafka to ClickHouse loader"),
        Step("models", ONESHOT, ("transform", "run"), 7, timeout=900, what="first dbt build",
             covered_by="dbt"),
        # The reporting views read the raw tables (fresh as soon as loaded); only the marts are rebuilt.
        Step("dbt", PROCESS, ("refresh", "--interval", str(refresh_s), "--select", *REFRESH_SELECT), 7,
             module=STACK_MODULE, what=f"dbt build of the marts every {refresh_s:g}s"),
    ]  # fmt: skip
    if with_dashboard:
        steps += [
            daemon("superset", 8, (loc.superset_port,), "Superset", 800, early=True),
            Step("dashboard", ONESHOT, ("dashboard", "sync"), 8, timeout=300, what="dashboard sync"),
        ]
    # first, so stages that crash while later ones start are restarted too (it waits for `up`'s lock)
    watchdog = Step("watchdog", PROCESS, ("watch",), module=STACK_MODULE, what="restarts crashed stages")
    return [watchdog, *steps]


def stack_env(s: RtfinSettings, speed: float | None = None) -> dict[str, str]:
    """Environment for every stage: clients point at the local services' ports from settings [local]."""
    loc = s.local
    env = {
        "RTFIN__LOCAL__DATA_DIR": str(Path(loc.data_dir).expanduser().resolve()),
        "RTFIN__LOCAL__CACHE_DIR": str(Path(loc.cache_dir).expanduser().resolve()),
        "RTFIN__KAFKA__BOOTSTRAP": f"127.0.0.1:{loc.kafka_port}",
        "RTFIN__CLICKHOUSE__HOST": "127.0.0.1",
        "RTFIN__CLICKHOUSE__PORT": str(loc.clickhouse_port),
        "RTFIN__CLICKHOUSE__SECURE": "false",
        "RTFIN__POLYGON__REST_URL": f"http://127.0.0.1:{loc.market_port}",
        "RTFIN__POLYGON__WS_URL": f"ws://127.0.0.1:{loc.market_port}/stocks",
        "RTFIN__DASHBOARD__BACKEND": "superset",
        "RTFIN__DASHBOARD__URL": f"http://127.0.0.1:{loc.superset_port}",
        "PYTHONUNBUFFERED": "1",
        "SPARK_LOCAL_IP": "127.0.0.1",  # Spark's driver and UI bind to loopback, like every local service
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
    }
    if speed is not None:
        env["RTFIN__LOCAL__MARKET_SPEED"] = str(speed)
    assets = Path(s.dashboard.assets_dir).expanduser()
    if not assets.is_absolute():  # stages may run from any directory: use the checkout's assets
        checkout = Path(__file__).resolve().parents[2] / assets
        env["RTFIN__DASHBOARD__ASSETS_DIR"] = str(assets.resolve() if assets.exists() else checkout)
    return env


# -- persisted state ------------------------------------------------------------------------------------
@dataclass
class Launch:
    """A start command running in the background."""

    proc: subprocess.Popen[bytes]
    scratch: Path
    offset: int
    started: float


@dataclass
class StepState:
    """What the stack knows about a stage beyond its pid file (written by `up` and the watchdog)."""

    state: str = "stopped"  # running | done | skipped | failed | stopped
    note: str = ""
    since: float = 0.0
    log_offset: int = 0
    restarts: list[float] = field(default_factory=list)
    next_restart_at: float | None = None


def _write_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=1))
    os.replace(tmp, path)


def not_implemented_note(text: str, step: Step) -> str | None:
    """The "not implemented yet" note when a command's output says so."""
    if NOT_IMPLEMENTED not in text:
        return None
    m = re.search(r"issue #(\d+)", text)
    return f"not implemented yet (issue #{m.group(1) if m else step.issue})"


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
        _write_json(self.run_dir / "stack.json", doc)

    def state(self, name: str) -> StepState:
        try:
            return StepState(**json.loads((self.run_dir / f"{name}.state.json").read_text()))
        except (OSError, ValueError, TypeError):
            return StepState()

    def set_state(self, name: str, st: StepState) -> None:
        _write_json(self.run_dir / f"{name}.state.json", asdict(st))

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
    def up(self, on_event: Event) -> None:
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
                    t0 = time.monotonic()
                    if step.name in early:
                        launch = early.pop(step.name)
                        outcome, detail = self._finish(step, launch)
                        t0 = launch.started
                    else:
                        outcome, detail = self.start_step(step)
                    if outcome in ("started", "done"):
                        detail = f"{detail} ({time.monotonic() - t0:.1f}s)".strip()
                    on_event(step.name, outcome, detail)
            finally:
                for launch in early.values():  # `up` failed before their turn: stop waiting for them
                    launch.proc.terminate()
                    launch.proc.wait(30)

    def _startable(self, step: Step) -> bool:
        """A server that is not running yet (its ports are checked now: a busy one fails `up` at once)."""
        if step.kind != DAEMON or self.service(step).pid() is not None:
            return False
        for port in step.ports:
            ensure_port_free(port, step.name)
        return True

    def start_step(self, step: Step) -> tuple[str, str]:
        """Start one stage: ('started'|'reused'|'done'|'skipped', detail); ProcessError when it fails."""
        svc = self.service(step)
        if step.covered_by and Service(step.covered_by, self.data_dir).pid() is not None:
            return "reused", f"kept up to date by the running {step.covered_by} service"
        if step.kind != ONESHOT and (pid := svc.pid()) is not None:
            st = self.state(step.name)
            if st.state != "running":
                self.set_state(step.name, StepState("running", since=time.time()))
            return "reused", f"pid {pid}"
        for port in step.ports:
            ensure_port_free(port, step.name)
        svc.log_file.parent.mkdir(parents=True, exist_ok=True)
        offset = svc.log_file.stat().st_size if svc.log_file.exists() else 0
        if step.kind == PROCESS:
            return self._start_process(step, svc, offset)
        return self._run_command(step, svc, offset)

    def _start_process(self, step: Step, svc: Service, offset: int) -> tuple[str, str]:
        deadline = time.monotonic() + PROCESS_GRACE_S
        try:
            pid = svc.start(
                step.command(), env=self.child_env(), cwd=self.cwd,
                ready=lambda: time.monotonic() > deadline, timeout=PROCESS_GRACE_S + 30,
            )  # fmt: skip
        except ProcessError as exc:
            return self._failed(step, self.log_since(step, offset), str(exc))
        self.set_state(step.name, StepState("running", since=time.time(), log_offset=offset))
        return "started", f"pid {pid}"

    def _run_command(self, step: Step, svc: Service, offset: int) -> tuple[str, str]:
        return self._finish(step, self._launch(step, offset))

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

    def _finish(self, step: Step, launch: Launch) -> tuple[str, str]:
        """Wait for a launched command; its output (local secrets redacted: a first Superset start prints
        its new admin password) goes to the stage's log; then judge the outcome."""
        svc = self.service(step)
        code: int | None = None
        try:
            code = launch.proc.wait(max(1.0, step.timeout - (time.monotonic() - launch.started)))
        except subprocess.TimeoutExpired:
            launch.proc.kill()
            launch.proc.wait()
        raw = launch.scratch.read_bytes() if launch.scratch.exists() else b""
        launch.scratch.unlink(missing_ok=True)
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        with open(svc.log_file, "a") as log:
            log.write(f"--- {stamp} rtfin {' '.join(step.argv)}\n{self.redact(raw.decode(errors='replace'))}")
        output = self.log_since(step, launch.offset)
        if code == 0:
            if step.kind == DAEMON:
                pid = svc.pid()
                self.set_state(step.name, StepState("running", since=time.time(), log_offset=launch.offset))
                return "started", f"pid {pid}" + (f" port {step.ports[0]}" if step.ports else "")
            self.set_state(step.name, StepState("done", since=time.time()))
            return "done", ""
        why = f"timed out after {step.timeout:.0f}s" if code is None else f"exit code {code}"
        return self._failed(step, output, why)

    def _failed(self, step: Step, output: str, why: str) -> tuple[str, str]:
        note = not_implemented_note(output, step)
        if note:
            self.set_state(step.name, StepState("skipped", note=note, since=time.time()))
            return "skipped", note
        self.set_state(step.name, StepState("failed", note=why, since=time.time()))
        tail = " | ".join(line.strip() for line in output.strip().splitlines()[-3:])
        raise ProcessError(
            f"{step.name} ({step.what}) failed to start: {why}: {tail}",
            f"See `rtfin local logs {step.name}`; stop what runs with `rtfin local down`.",
        )

    # -- down ------------------------------------------------------------------------------------------
    def down(self, on_event: Event, timeout: float = 30.0, purge: bool = False) -> None:
        """Stop the watchdog, then every stage in reverse order (SIGTERM, SIGKILL after ``timeout``)."""
        with self.lock():
            names = [st.name for st in self.steps]
            order = ["watchdog"] + [n for n in reversed(names) if n != "watchdog"]
            # services started outside `up` in this data dir (e.g. `rtfin local kafka start`) stop last
            extra = sorted(p.stem for p in self.run_dir.glob("*.pid") if p.stem not in order)
            for name in order + extra:
                step = next((st for st in self.steps if st.name == name), Step(name, PROCESS, ()))
                svc = self.service(step)
                pid = svc.pid()
                if pid is not None:
                    svc.stop(timeout)
                    left = reap_group(pid, timeout=10.0)
                    on_event(
                        name,
                        "stopped",
                        f"pid {pid}" + (f" (killed {left} leftover child processes)" if left else ""),
                    )
                if step.kind != ONESHOT and self.state(name).state != "stopped":
                    self.set_state(name, StepState("stopped", since=time.time()))
            busy = [p for st in self.steps for p in st.ports if not wait_for(_port_closed(p), 10)]
            if busy:
                holders = ", ".join(f"{p} ({port_owner(p) or 'unknown'})" for p in busy)
                raise ProcessError(f"ports still in use after stopping the stack: {holders}")
            if purge:
                for path in self.purge_paths():
                    shutil.rmtree(path, ignore_errors=True)
                    on_event(str(path), "purged", "")

    def purge_paths(self) -> list[Path]:
        """The data directory plus the sentiment checkpoints when they live in a local directory."""
        paths = [self.data_dir]
        ckpt = os.environ.get("RTFIN__SENTIMENT__CHECKPOINT_DIR") or ".rtfin/checkpoints/sentiment"
        if "://" not in ckpt and not ckpt.startswith(("/Volumes", "/dbfs")):
            path = (self.cwd / ckpt).resolve()
            if path.exists() and not path.is_relative_to(self.data_dir):
                paths.append(path)
        return paths

    # -- status ----------------------------------------------------------------------------------------
    def status(self) -> list[dict[str, Any]]:
        """One dict per stage: state, pid, port, uptime, restarts, note, last error, log path."""
        rows = []
        watchdog_alive = Service("watchdog", self.data_dir).pid() is not None
        for step in self.steps:
            svc = self.service(step)
            st = self.state(step.name)
            pid = svc.pid() if step.kind != ONESHOT else None
            info = svc.status()
            if pid is not None:
                state = "running"
            elif st.state == "running":
                state = "restarting" if watchdog_alive else "crashed"
            else:
                state = st.state if st.state != "stopped" or step.kind != ONESHOT else "not run"
            rows.append({
                "service": step.name, "kind": step.kind, "what": step.what, "state": state, "pid": pid,
                "port": step.ports[0] if step.ports else None,
                "uptime_s": round(info.uptime_s, 1) if pid is not None and info.uptime_s else None,
                "restarts": len(st.restarts), "note": st.note,
                "last_error": last_error(svc.log_file) if state in ("running", "failed", "crashed") else "",
                "log": str(svc.log_file),
            })  # fmt: skip
        return rows

    def lag_summary(self, timeout: float = 60.0) -> dict[str, Any]:
        """`rtfin lag --once --json` against the stack ({'skipped': why} while #9 has not landed)."""
        try:
            proc = subprocess.run([sys.executable, "-m", "rtfin_cli", "lag", "--once", "--json"],
                                  capture_output=True, text=True, env=self.child_env(), cwd=self.cwd,
                                  timeout=timeout)  # fmt: skip
        except subprocess.TimeoutExpired:
            return {"error": f"rtfin lag timed out after {timeout:.0f}s"}
        if proc.returncode == 2 and (NOT_IMPLEMENTED in proc.stderr or "No such option" in proc.stderr):
            return {"skipped": "rtfin lag is not implemented yet (issue #9)"}
        try:
            doc = json.loads(proc.stdout.strip().splitlines()[-1])
        except (ValueError, IndexError):
            err = (proc.stderr.strip().splitlines() or [f"exit code {proc.returncode}"])[0]
            return {"error": err}
        return {"exit_code": proc.returncode, "snapshot": doc}


def _port_closed(port: int) -> Callable[[], bool]:
    return lambda: not port_open(port)


def last_error(log: Path, lines: int = 200) -> str:
    """The last line of a log's tail that looks like an error ('' when none)."""
    try:
        with open(log, "rb") as fh:
            fh.seek(max(0, fh.seek(0, 2) - 64 * 1024))
            tail = fh.read().decode(errors="replace").splitlines()[-lines:]
    except OSError:
        return ""
    pattern = re.compile(r"error|exception|traceback|fatal", re.IGNORECASE)
    hits = [line.strip() for line in tail if pattern.search(line)]
    return hits[-1][:300] if hits else ""


def group_pids(pgid: int) -> set[int]:
    """Live (non-zombie) processes in process group ``pgid``: a supervised service and its children."""
    out = set()
    for entry in filter(str.isdigit, os.listdir("/proc")):
        try:
            fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            out.add(int(entry))
    return out


def reap_group(pgid: int, timeout: float) -> int:
    """Wait for the rest of a stopped service's process group (Spark's JVM, gunicorn workers) to exit;
    SIGKILL what is left after ``timeout``. Returns how many had to be killed."""
    if not wait_for(lambda: not group_pids(pgid), timeout, interval=0.2):
        left = group_pids(pgid)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, signal.SIGKILL)
        wait_for(lambda: not group_pids(pgid), 5.0)
        return len(left)
    return 0


def supervised_pids(data_dir: Path) -> dict[str, int]:
    """{service: pid} of every live supervised process in a data directory."""
    out = {}
    for pid_file in sorted((Path(data_dir) / "run").glob("*.pid")):
        pid = Service(pid_file.stem, Path(data_dir)).pid()
        if pid is not None:
            out[pid_file.stem] = pid
    return out


if __name__ == "__main__":
    from rtfin_cli.local.stack_watch import main

    sys.exit(main(sys.argv[1:]))
