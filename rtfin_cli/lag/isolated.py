"""The live view's monitor in a child process, so a native crash cannot end the view.

librdkafka has killed ``rtfin lag`` across broker restarts before (a SIGSEGV, confluentinc/librdkafka#5040,
worked around in ``lag.committed``; a SIGABRT seen once since). Such a crash takes the whole process with it,
whatever Python does. Here it ends only the child that holds the clients: the refresh in flight reports it,
and the next refresh starts a new child. A child that stops answering is killed the same way.
"""

from __future__ import annotations

import logging
import multiprocessing
import signal
from multiprocessing.connection import Connection
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from multiprocessing.process import BaseProcess

    from rtfin_cli.lag.model import Snapshot
    from rtfin_cli.lag.snapshot import Options
    from rtfin_cli.settings import RtfinSettings

START_S = 60.0  # a new child imports rtfin and its clients before its first snapshot
CLOSE_S = 3.0  # how long a stopping view waits for the child to close its clients before killing it


class ProbeCrashed(RuntimeError):
    """The child taking snapshots died or stopped answering; the next snapshot starts a new one."""


def _serve(conn: Connection, settings: RtfinSettings, opts: Options) -> None:
    """The child: one snapshot per request until told to close or the parent goes away."""
    from rtfin_cli.lag.snapshot import Monitor

    for sig in (signal.SIGINT, signal.SIGTERM):  # a stop sent to the process group is the parent's to handle:
        signal.signal(sig, signal.SIG_IGN)  # it ends this child (close, or EOF when the parent is gone)
    kafka_log = logging.getLogger("rtfin.kafka.client")  # the clients' log: here, not the parent's
    kafka_log.propagate = False  # broker-down chatter must not scribble over the view
    monitor = Monitor(settings, opts)
    try:
        while conn.recv() == "snapshot":
            try:
                conn.send((True, monitor.snapshot()))
            except Exception as exc:  # noqa: BLE001 - the parent shows it; the next refresh tries again
                conn.send((False, f"{type(exc).__name__}: {exc}"))
    except EOFError:
        pass  # the parent ended
    finally:
        monitor.close()


class IsolatedMonitor:
    """``snapshot()`` and ``close()`` of a Monitor that lives in a child process (spawned, not forked:
    the child starts with no client threads)."""

    def __init__(self, settings: RtfinSettings, opts: Options, answer_s: float) -> None:
        self._args = (settings, opts)
        self.answer_s = answer_s  # longest a snapshot may take before the child counts as hung
        self._proc: BaseProcess | None = None
        self._conn: Connection | None = None
        self._started = False
        self.crashes = 0

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def snapshot(self) -> Snapshot:
        if self._proc is None:
            self._start()
        assert self._conn is not None
        wait = self.answer_s + (0.0 if self._started else START_S)
        try:
            self._conn.send("snapshot")
            if not self._conn.poll(wait):
                raise TimeoutError
            ok, value = self._conn.recv()
        except (EOFError, OSError, TimeoutError) as exc:
            raise ProbeCrashed(self._lost(hung=isinstance(exc, TimeoutError), wait=wait)) from None
        self._started = True
        if not ok:
            raise RuntimeError(value)
        return value  # type: ignore[no-any-return]

    def _start(self) -> None:
        ctx = multiprocessing.get_context("spawn")
        self._conn, child = ctx.Pipe()
        self._proc = ctx.Process(
            target=_serve, args=(child, *self._args), name="rtfin-lag-probe", daemon=True
        )
        self._proc.start()
        child.close()
        self._started = False

    def _lost(self, hung: bool, wait: float) -> str:
        """Ends the child; what happened to it, for the view."""
        proc, self._proc = self._proc, None
        assert proc is not None
        _end(proc, grace_s=0.0 if hung else 5.0)
        self._close_conn()
        self.crashes += 1
        if hung:
            return f"the Kafka probe did not answer within {wait:g}s and was stopped; a new one starts now"
        code = proc.exitcode
        how = f"signal {signal.Signals(-code).name}" if code is not None and code < 0 else f"exit code {code}"
        return f"the Kafka probe process died ({how}); a new one starts now"

    def _close_conn(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def close(self) -> None:
        """Asks the child to close its clients; kills it after ``CLOSE_S`` (it only reads, so nothing is
        lost), as librdkafka's close can hang on a broker that just restarted and a stop must be prompt."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        try:
            assert self._conn is not None
            self._conn.send("close")
        except OSError:
            pass
        _end(proc, grace_s=CLOSE_S)
        self._close_conn()


def _end(proc: BaseProcess, grace_s: float) -> None:
    """Waits ``grace_s`` for the child to exit, then kills it: it ignores SIGTERM, so one left alive
    would also hang multiprocessing's exit handler, which terminates and then joins daemon children."""
    proc.join(grace_s)
    if proc.is_alive():
        proc.kill()
        proc.join(5)
