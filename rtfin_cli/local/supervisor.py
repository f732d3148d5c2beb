"""A small process supervisor: pid files, log files, liveness, port checks, graceful stop.

Every local service is a detached process with ``<data_dir>/run/<name>.pid`` and
``<data_dir>/logs/<name>.log``; each local server (Kafka, ClickHouse, market replay, Superset)
is a :class:`LocalServer` on top of one :class:`Service`. Nothing here prints; callers render the results.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from rtfin_cli.errors import ProcessError

PRIVATE_UMASK = 0o077  # what supervised servers write (logs, databases, configs) is the owner's only


@dataclass
class ServiceStatus:
    """A supervised process as its pid file and /proc show it."""

    name: str
    running: bool
    pid: int | None
    port: int | None
    started_at: float | None
    log: Path

    @property
    def uptime_s(self) -> float | None:
        return time.time() - self.started_at if self.running and self.started_at else None


class LocalServer(Protocol):
    """A local dev server run as a supervised process.

    ``start`` returns the pid once ``ready`` is true; it raises ProcessError when the server is
    already running, its port is taken, it exits during start-up or is not ready within ``timeout``.
    ``ready`` may raise while the server is coming up (callers treat that as not ready).
    ``stop`` is False when the server was not running.
    """

    name: str

    def start(self, timeout: float = ...) -> int: ...
    def ready(self) -> bool: ...
    def stop(self, timeout: float = ...) -> bool: ...
    def status(self) -> ServiceStatus: ...


class Service:
    """One supervised process, identified by name under a data directory."""

    def __init__(self, name: str, data_dir: Path, port: int | None = None) -> None:
        self.name = name
        self.data_dir = Path(data_dir)
        self.port = port
        self.pid_file = self.data_dir / "run" / f"{name}.pid"
        self.log_file = self.data_dir / "logs" / f"{name}.log"

    # -- state -----------------------------------------------------------------------------------
    def _read_pid(self) -> tuple[int | None, float | None]:
        try:
            meta = json.loads(self.pid_file.read_text())
            return int(meta["pid"]), float(meta.get("started_at", 0)) or None
        except (OSError, ValueError, KeyError, TypeError):
            return None, None

    def pid(self) -> int | None:
        """The pid of the running process, or None (a stale pid file is removed)."""
        pid, _ = self._read_pid()
        if pid is None:
            return None
        if pid_alive(pid):
            return pid
        self.pid_file.unlink(missing_ok=True)
        return None

    def status(self) -> ServiceStatus:
        pid = self.pid()
        _, started = self._read_pid()
        return ServiceStatus(self.name, pid is not None, pid, self.port, started, self.log_file)

    # -- lifecycle -------------------------------------------------------------------------------
    def start(
        self,
        cmd: Sequence[str],
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
        ready: Callable[[], bool] | None = None,
        timeout: float = 60.0,
    ) -> int:
        """Start detached; wait until ``ready()`` is true. Raises ProcessError with the log tail."""
        if (pid := self.pid()) is not None:
            raise ProcessError(
                f"{self.name} is already running (pid {pid})", f"Stop it with `rtfin local {self.name} stop`."
            )
        if self.port is not None:
            ensure_port_free(self.port, self.name)
        for directory in (self.data_dir, self.pid_file.parent, self.log_file.parent):
            private_dir(directory)
        with open(os.open(self.log_file, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600), "ab") as log:
            proc = subprocess.Popen(
                list(cmd),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env={**os.environ, **(env or {})},
                cwd=cwd,
                start_new_session=True,
                umask=PRIVATE_UMASK,
            )
        write_private(
            self.pid_file, json.dumps({"pid": proc.pid, "started_at": time.time(), "cmd": list(cmd)})
        )
        if ready is not None:
            self._await_ready(proc, ready, timeout)
        return proc.pid

    def _await_ready(self, proc: subprocess.Popen[bytes], ready: Callable[[], bool], timeout: float) -> None:
        """Poll ``ready()`` until true; ProcessError (with the log tail) when the process exits first or
        ``timeout`` passes (it is then stopped)."""
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                self.pid_file.unlink(missing_ok=True)
                raise ProcessError(
                    f"{self.name} exited during start-up (code {proc.returncode}): {self.log_tail(3)}",
                    f"Full log: {self.log_file}",
                )
            try:
                if ready():
                    return
            except Exception:  # noqa: BLE001 - not ready yet
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise ProcessError(
                    f"{self.name} not ready after {timeout:.0f}s: {self.log_tail(3)}",
                    f"Full log: {self.log_file}",
                )
            time.sleep(0.2)

    def stop(self, timeout: float = 20.0) -> bool:
        """SIGTERM the process group, SIGKILL after ``timeout``. False when it was not running."""
        pid = self.pid()
        if pid is None:
            self.pid_file.unlink(missing_ok=True)
            return False
        stop_pid(pid, timeout)
        self.pid_file.unlink(missing_ok=True)
        return True

    def log_tail(self, lines: int = 20) -> str:
        try:
            text = self.log_file.read_text(errors="replace").strip().splitlines()
        except OSError:
            return ""
        return " | ".join(line.strip() for line in text[-lines:])


def private_dir(path: Path) -> None:
    """Create ``path`` (and parents) readable by the owner only; an existing one loses group/other rights."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    mode = path.stat().st_mode & 0o777
    if mode & 0o077:
        with contextlib.suppress(OSError):  # not ours to change: leave it
            path.chmod(mode & 0o700)


def write_private(path: Path, text: str) -> None:
    """Replace ``path``'s content with ``text`` in a file only the owner can read."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie is not alive
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(") ", 1)[1][0] != "Z"
    except OSError:
        return True


def stop_pid(pid: int, timeout: float = 20.0) -> None:
    """Gracefully stop a process (and its group), escalating to SIGKILL."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(pid, sig)
        except (ProcessLookupError, PermissionError):
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                return
        deadline = time.monotonic() + (timeout if sig == signal.SIGTERM else 5)
        while time.monotonic() < deadline:
            with contextlib.suppress(ChildProcessError):  # reap if it is our child
                os.waitpid(pid, os.WNOHANG)
            if not pid_alive(pid):
                return
            time.sleep(0.1)
    raise ProcessError(f"process {pid} did not exit after SIGKILL")


def port_open(port: int, host: str = "127.0.0.1", timeout: float = 0.5) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        return s.connect_ex((host, port)) == 0


def port_owner(port: int) -> str | None:
    """'name (pid N)' of the process listening on a TCP port, where /proc tells."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as fh:
                for line in fh.readlines()[1:]:
                    parts = line.split()
                    if int(parts[1].rsplit(":", 1)[1], 16) == port and parts[3] == "0A":
                        inodes.add(parts[9])
        except OSError:
            continue
    if not inodes:
        return None
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            for fd in os.listdir(f"/proc/{pid}/fd"):
                link = os.readlink(f"/proc/{pid}/fd/{fd}")
                if link.startswith("socket:[") and link[8:-1] in inodes:
                    name = Path(f"/proc/{pid}/comm").read_text().strip()
                    return f"{name} (pid {pid})"
        except OSError:
            continue
    return "another process"


def ensure_port_free(port: int, service: str) -> None:
    if port_open(port):
        owner = port_owner(port) or "another process"
        raise ProcessError(
            f"port {port} needed by {service} is already in use by {owner}",
            "Stop that process or choose another port in the [local] settings.",
        )


def free_port() -> int:
    """An unused TCP port on 127.0.0.1 (for tests and ephemeral services)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(check: Callable[[], bool], timeout: float, interval: float = 0.2) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return True
        except Exception:  # noqa: BLE001
            pass
        time.sleep(interval)
    return False


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
