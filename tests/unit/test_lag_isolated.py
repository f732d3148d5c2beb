"""The live view's monitor in a child process: a native crash or a hang ends the child, never the view."""

from __future__ import annotations

import os
import signal

import pytest

from rtfin_cli.lag.isolated import IsolatedMonitor, ProbeCrashed
from rtfin_cli.lag.snapshot import Options
from rtfin_cli.local.supervisor import free_port, wait_for
from rtfin_cli.settings import KafkaSettings, RtfinSettings


def _monitor(answer_s: float = 30.0) -> IsolatedMonitor:
    kafka = KafkaSettings(bootstrap=f"127.0.0.1:{free_port()}", timeout_s=1.0)  # nothing listens: unreachable
    return IsolatedMonitor(RtfinSettings(kafka=kafka), Options(pipeline=False), answer_s=answer_s)


def test_a_crashed_child_is_reported_and_replaced() -> None:
    monitor = _monitor()
    try:
        assert monitor.snapshot().kafka["status"] == "unreachable"
        first = monitor.pid
        assert first is not None
        os.kill(first, signal.SIGABRT)  # what librdkafka's abort() does to the process holding the clients
        with pytest.raises(ProbeCrashed, match="died \\(signal SIGABRT\\)"):
            monitor.snapshot()
        assert monitor.snapshot().kafka["status"] == "unreachable"
        assert monitor.pid not in (None, first) and monitor.crashes == 1
    finally:
        monitor.close()
    assert monitor.pid is None


def test_a_hung_child_is_stopped_and_replaced() -> None:
    monitor = _monitor(answer_s=2.0)
    try:
        monitor.snapshot()
        hung = monitor.pid
        assert hung is not None
        os.kill(hung, signal.SIGSTOP)  # a deadlock in native code: alive, never answers
        with pytest.raises(ProbeCrashed, match="did not answer within 2s"):
            monitor.snapshot()
        assert wait_for(lambda: not os.path.exists(f"/proc/{hung}"), 10)  # killed and reaped
        assert monitor.snapshot().kafka["status"] == "unreachable"
    finally:
        monitor.close()


def test_close_ends_the_child_which_leaves_a_group_stop_to_the_parent() -> None:
    monitor = _monitor()
    monitor.snapshot()
    pid = monitor.pid
    assert pid is not None
    for sig in (signal.SIGTERM, signal.SIGINT):  # what a stop sent to the whole process group gives the child
        os.kill(pid, sig)
    assert monitor.snapshot().kafka["status"] == "unreachable" and monitor.pid == pid
    monitor.close()
    assert pid is not None and not os.path.exists(f"/proc/{pid}")


def test_close_kills_a_child_that_does_not_close_in_time() -> None:
    import time

    from rtfin_cli.lag.isolated import CLOSE_S

    monitor = _monitor()
    monitor.snapshot()
    pid = monitor.pid
    assert pid is not None
    os.kill(pid, signal.SIGSTOP)  # a client close that hangs on a broker that just restarted
    t0 = time.monotonic()
    monitor.close()
    assert time.monotonic() - t0 < CLOSE_S + 5 and not os.path.exists(f"/proc/{pid}")
