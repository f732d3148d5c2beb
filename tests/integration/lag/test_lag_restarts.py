"""The live view across broker restarts, a crash of its Kafka probe and a hung broker, in tmux as an operator
runs it.

librdkafka's admin OffsetFetch dereferenced a NULL consumer group when a restarted broker answered
NOT_COORDINATOR (confluentinc/librdkafka#5040): the view died with SIGSEGV within a few restarts.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from rtfin_cli.local.supervisor import wait_for
from tests.integration.lag.conftest import ROOT, commit, lag_env, new_topic, produce

RESTARTS = 5


class Pane:
    """One tmux session running a command; ``screen()`` is what the operator sees right now."""

    def __init__(self, cmd: str, env: dict[str, str], cwd: Path, width: int = 100, height: int = 40) -> None:
        tmux = shutil.which("tmux")
        assert tmux, "tmux is required for this test: `make setup` installs it"
        self.tmux, self.sock = tmux, f"rtfin-lag-{uuid.uuid4().hex[:8]}"
        subprocess.run([tmux, "-L", self.sock, "new-session", "-d", "-s", "lag", "-x", str(width),
                        "-y", str(height), cmd], env=env, cwd=cwd, check=True)  # fmt: skip

    def screen(self) -> str:
        res = subprocess.run([self.tmux, "-L", self.sock, "capture-pane", "-p", "-t", "lag"],
                             capture_output=True, text=True)  # fmt: skip
        return res.stdout

    def child_pid(self) -> int:
        """The pid of the command the pane's shell runs (the shell's only child)."""
        res = subprocess.run([self.tmux, "-L", self.sock, "display-message", "-p", "-t", "lag", "#{pane_pid}"],
                             capture_output=True, text=True, check=True)  # fmt: skip
        kids = Path(f"/proc/{res.stdout.strip()}/task/{res.stdout.strip()}/children").read_text().split()
        assert len(kids) == 1, kids
        return int(kids[0])

    def probe_pid(self) -> int:
        """The pid of the view's child process that holds the Kafka clients (``lag.isolated``)."""
        pid = self.child_pid()
        kids = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        probes = [int(k) for k in kids if b"spawn_main" in Path(f"/proc/{k}/cmdline").read_bytes()]
        assert len(probes) == 1, kids
        return probes[0]

    def kill(self) -> None:
        subprocess.run([self.tmux, "-L", self.sock, "kill-server"], capture_output=True)


def _lag_on_screen(screen: str) -> int | None:
    m = re.search(r"· lag ([\d,]+) msgs", screen)
    return int(m.group(1).replace(",", "")) if m else None


@pytest.mark.slow
def test_live_view_survives_restarts_a_probe_crash_and_a_hung_broker(
    tmp_path: Path, rtfin_env: dict[str, str]
) -> None:
    from rtfin_cli.local.kafka import KafkaBroker
    from rtfin_cli.local.supervisor import free_port
    from rtfin_cli.settings import KafkaSettings

    broker = KafkaBroker(
        tmp_path / "own-kafka", ROOT / ".cache", port=free_port(), controller_port=free_port()
    )
    broker.start(timeout=180)
    pane: Pane | None = None
    rc_file, err_file = tmp_path / "rc", tmp_path / "stderr"
    try:
        kafka = KafkaSettings(bootstrap=broker.bootstrap)
        topic = new_topic(kafka, partitions=2)
        sent = produce(kafka, topic, 20)
        ends = {p: sum(1 for q, _, _ in sent if q == p) for p in (0, 1)}
        assert min(ends.values()) > RESTARTS, ends  # each restart commits one more per partition
        group = f"restart-{topic}"
        commit(kafka, group, topic, {0: 0, 1: 0})
        env = {k: v for k, v in lag_env(rtfin_env).items() if k != "NO_COLOR"}
        env.update(
            TERM="xterm-256color", RTFIN__KAFKA__BOOTSTRAP=broker.bootstrap, RTFIN__KAFKA__TIMEOUT_S="2"
        )
        # the pipeline stays on: its groups do not exist, the OffsetFetch case that crashed most often
        lag = f"{sys.executable} -m rtfin_cli lag --interval 500ms"
        pane = Pane(f"sh -c '{lag} 2> {err_file}; echo $? > {rc_file}; sleep 600'", env, tmp_path)

        def seen() -> str:  # the screen and, for a crash, what the view wrote to stderr
            err = err_file.read_text(errors="replace") if err_file.exists() else ""
            return f"{pane.screen()}\n--- stderr ---\n{err[-6000:]}"

        assert wait_for(lambda: _lag_on_screen(pane.screen()) == 20, 60), seen()

        for i in range(1, RESTARTS + 1):
            broker.stop()
            assert wait_for(lambda: "UNREACHABLE" in pane.screen(), 30), seen()
            broker.start(timeout=180)
            commit(kafka, group, topic, {0: i, 1: i})  # live numbers: the lag the view shows must move
            assert wait_for(lambda i=i: _lag_on_screen(pane.screen()) == 20 - 2 * i, 60), (i, seen())
            assert not rc_file.exists(), f"rtfin lag exited {rc_file.read_text()} after restart {i}"

        # a native crash in the client library (librdkafka aborted the view here once): the child that holds
        # the clients dies, the view says so and goes on with a new one
        os.kill(pane.probe_pid(), signal.SIGABRT)
        assert wait_for(lambda: "SIGABRT" in pane.screen(), 30), seen()
        commit(kafka, group, topic, {0: RESTARTS + 1, 1: RESTARTS + 1})
        assert wait_for(lambda: _lag_on_screen(pane.screen()) == 18 - 2 * RESTARTS, 60), seen()

        pid = broker.service.pid()
        assert pid is not None
        os.kill(pid, signal.SIGSTOP)  # a hung broker: connections stay open, nothing answers
        try:
            assert wait_for(lambda: "UNREACHABLE" in pane.screen(), 60), seen()
        finally:
            os.kill(pid, signal.SIGCONT)
        commit(kafka, group, topic, ends)  # caught up
        assert wait_for(lambda: _lag_on_screen(pane.screen()) == 0, 60), seen()
        assert not rc_file.exists(), f"rtfin lag exited {rc_file.read_text()} after the hang"

        os.kill(pane.child_pid(), signal.SIGTERM)
        assert wait_for(rc_file.exists, 30), seen()
        assert rc_file.read_text().strip() == "0", seen()
    finally:
        if pane is not None:
            pane.kill()
        broker.stop()
