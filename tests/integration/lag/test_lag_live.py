"""The live view as an operator sees it (tmux), and a broker that goes away and comes back."""

from __future__ import annotations

import shutil
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

from rtfin_cli.local.supervisor import wait_for
from tests.integration.lag.conftest import ROOT, commit, lag_env, new_topic, produce


def test_live_view_in_tmux(kafka_settings: Any, rtfin_env: dict[str, str], tmp_path: Path) -> None:
    tmux = shutil.which("tmux")
    assert tmux, "tmux is required for this test: `make setup` installs it"
    topic = new_topic(kafka_settings, partitions=2)
    produce(kafka_settings, topic, 50)
    group = f"tmux-{topic}"
    commit(kafka_settings, group, topic, {0: 0, 1: 0})
    sock = f"rtfin-lag-{uuid.uuid4().hex[:8]}"
    env = {k: v for k, v in lag_env(rtfin_env).items() if k != "NO_COLOR"}
    env["TERM"] = "xterm-256color"
    cmd = f"{sys.executable} -m rtfin_cli lag --group {group} --interval 1s --wide --max-lag 10"
    subprocess.run([tmux, "-L", sock, "new-session", "-d", "-s", "lag", "-x", "150", "-y", "30", cmd],
                   env=env, cwd=tmp_path, check=True)  # fmt: skip

    def screen() -> str:
        res = subprocess.run([tmux, "-L", sock, "capture-pane", "-p", "-S", "-", "-t", "lag"],
                             capture_output=True, text=True)  # fmt: skip
        return res.stdout

    try:
        # the first refresh may still meet a broker loading its offsets topic: wait for the group's rows
        assert wait_for(lambda: "[1] 0/" in screen() and "pipeline" in screen(), 60), screen()
        first = screen()
        assert "consumer groups" in first and "LAGGING" in first and "lag 50 msgs" in first
        assert "[0] 0/" in first and "[1] 0/" in first
        stamp = next(line for line in first.splitlines() if line.startswith("updated "))
        # it refreshes in place: a new timestamp, and still exactly one header on the whole scrollback
        assert wait_for(lambda: stamp not in screen(), 30)
        commit(kafka_settings, group, topic, {0: 100, 1: 100})  # the group catches up
        assert wait_for(lambda: "lag 0 msgs" in screen(), 30), screen()
        final = screen()
        assert final.count("rtfin lag  Kafka") == 1 and final.count("consumer groups") == 1, final
        (tmp_path / "lag-tmux.txt").write_text(final)
        subprocess.run([tmux, "-L", sock, "send-keys", "-t", "lag", "C-c"], check=True)
        assert wait_for(lambda: subprocess.run([tmux, "-L", sock, "has-session", "-t", "lag"],
                                               capture_output=True).returncode != 0, 20)  # fmt: skip
    finally:
        subprocess.run([tmux, "-L", sock, "kill-server"], capture_output=True)


@pytest.mark.slow
def test_unreachable_broker_is_shown_and_the_view_recovers(
    tmp_path: Path, rtfin_env: dict[str, str], live_lag: Any
) -> None:
    from rtfin_cli.local.kafka import KafkaBroker
    from rtfin_cli.local.supervisor import free_port
    from rtfin_cli.settings import KafkaSettings

    broker = KafkaBroker(
        tmp_path / "own-kafka", ROOT / ".cache", port=free_port(), controller_port=free_port()
    )
    broker.start(timeout=180)
    try:
        kafka = KafkaSettings(bootstrap=broker.bootstrap)
        topic = new_topic(kafka, partitions=1)
        produce(kafka, topic, 5)
        group = f"restart-{topic}"
        commit(kafka, group, topic, {0: 2})
        env = {
            **lag_env(rtfin_env),
            "RTFIN__KAFKA__BOOTSTRAP": broker.bootstrap,
            "RTFIN__KAFKA__TIMEOUT_S": "2",
        }
        live = live_lag("--group", group, "--interval", "500ms", "--no-pipeline", env=env)
        up = live.wait_for(lambda d: d["kafka"]["status"] == "ok" and d["groups"][0]["topic"] == topic, 60)
        assert up["groups"][0]["lag"] == 3

        broker.stop()
        down = live.wait_for(lambda d: d["kafka"]["status"] == "unreachable", 60)
        assert broker.bootstrap in down["kafka"]["error"] and down["groups"] == []

        broker.start(timeout=180)
        # right after a restart the group coordinator may still be loading: an UNREACHABLE row, then the lag again
        back = live.wait_for(lambda d: d["kafka"]["status"] == "ok" and d["groups"][0]["topic"] == topic, 120)
        assert back["groups"][0]["lag"] == 3 and back["groups"][0]["group"] == group
        assert live.stop() == 0
    finally:
        broker.stop()
