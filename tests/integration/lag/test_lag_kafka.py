"""`rtfin lag` against the real session broker: numbers, states, JSON, exit codes."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from rtfin_cli.local.supervisor import wait_for
from tests.conftest import run_cli
from tests.integration.lag.conftest import Member, commit, lag_env, new_topic, produce


def _monitor(kafka: Any, **opts: Any) -> Any:
    from rtfin_cli.lag.snapshot import Monitor, Options
    from rtfin_cli.settings import RtfinSettings

    return Monitor(RtfinSettings(kafka=kafka), Options(pipeline=False, **opts))


def test_lag_and_time_lag_match_what_was_produced(
    kafka_settings: Any, members: list[Member], rtfin_env: dict[str, str], tmp_path: Path
) -> None:
    topic = new_topic(kafka_settings)
    base_ms = int(time.time() * 1000) - 600_000  # event times 10 min in the past, 1 s apart
    sent = produce(kafka_settings, topic, 90, ts_ms=lambda i: base_ms + i * 1000)
    group = f"slow-{topic}"
    slow = Member(kafka_settings, group, topic, limit=30)  # consumes 30, commits each, then stops moving
    members.append(slow)
    slow.start()
    assert wait_for(lambda: slow.consumed == 30, 60), slow.error

    # what the test itself knows: the message waiting at each partition's committed offset
    from rtfin_cli.kafka.clients import admin

    client = admin(kafka_settings)

    def committed() -> dict[int, int]:
        res = client.list_consumer_group_offsets([_cgtp(group)])[group].result(10)
        return {tp.partition: tp.offset for tp in res.topic_partitions if tp.offset >= 0}

    assert wait_for(lambda: sum(committed().values()) == 30, 30)
    heads = committed()
    ends = {p: max(o for q, o, _ in sent if q == p) + 1 for p in range(3)}
    ts_at = {(p, off): ts for p, off, ts in sent}
    # a partition without a commit waits from its first message (offset 0)
    waiting = {p: ts_at[(p, heads.get(p, 0))] for p in range(3) if heads.get(p, 0) < ends[p]}
    assert waiting, (heads, ends)

    t_before = time.time()
    m = _monitor(kafka_settings, groups=[group])
    snap = m.snapshot()
    t_after = time.time()
    m.close()
    [row] = snap.groups
    assert (row.group, row.topic, row.lag, row.members) == (group, topic, 60, 1)
    oldest = min(waiting.values()) / 1000
    assert t_before - oldest - 0.01 <= row.time_lag_s <= t_after - oldest + 0.01
    for part in row.partitions:
        p = part.partition
        assert (part.committed, part.end, part.lag) == (heads.get(p), ends[p], ends[p] - heads.get(p, 0))
        if p in waiting:
            assert (
                t_before - waiting[p] / 1000 - 0.01 <= part.time_lag_s <= t_after - waiting[p] / 1000 + 0.01
            )
        else:
            assert part.time_lag_s == 0

    # the same through the CLI: JSON that parses, and exit codes that follow the thresholds
    env = lag_env(rtfin_env)
    out = run_cli("lag", "--once", "--json", "--group", group, "--no-pipeline", env=env, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert doc["groups"][0]["lag"] == 60 and doc["groups"][0]["time_lag_s"] >= 600 - 90
    assert doc["totals"]["lag"] == 60 and doc["kafka"]["status"] == "ok" and doc["exceeded"] == []
    for args, code in [
        (["--max-lag", "59"], 8),
        (["--max-lag", "60"], 0),
        (["--max-age", "60s"], 8),
        (["--max-age", "1h"], 0),
        (["--max-lag", "1000", "--max-age", "2m"], 8),
    ]:
        res = run_cli(
            "lag", "--once", "--json", "--group", group, "--no-pipeline", *args, env=env, cwd=tmp_path
        )
        assert res.returncode == code, (args, res.stderr)
        assert bool(json.loads(res.stdout)["exceeded"]) == (code == 8)
        if code == 8:
            assert res.stderr.startswith("error: threshold exceeded") and "Traceback" not in res.stderr


def _cgtp(group: str) -> Any:
    from confluent_kafka import ConsumerGroupTopicPartitions

    return ConsumerGroupTopicPartitions(group)


def test_caught_up_group_on_an_idle_topic_stays_ok(kafka_settings: Any, members: list[Member]) -> None:
    topic = new_topic(kafka_settings, partitions=2)
    produce(kafka_settings, topic, 20)
    group = f"idle-{topic}"
    member = Member(kafka_settings, group, topic)
    members.append(member)
    member.start()
    assert wait_for(lambda: member.consumed == 20, 60), member.error
    m = _monitor(kafka_settings, groups=[group], window_s=1.5)
    states = []
    deadline = time.monotonic() + 4  # well over two windows of silence
    while time.monotonic() < deadline:
        [row] = m.snapshot().groups
        states.append((row.state, row.lag, row.time_lag_s))
        time.sleep(0.3)
    assert set(states) == {("OK", 0, 0.0)}, states
    # a message after the silence is consumed promptly: still OK, never STALLED
    produce(kafka_settings, topic, 1)
    for _ in range(8):
        [row] = m.snapshot().groups
        assert row.state == "OK", row
        time.sleep(0.3)
    assert member.consumed == 21
    m.close()
    # --only-lagging hides the caught-up row
    assert _monitor(kafka_settings, groups=[group], only_lagging=True).snapshot().groups == []


def test_paused_consumer_becomes_lagging_then_stalled(
    kafka_settings: Any, members: list[Member], rtfin_env: dict[str, str], live_lag: Any
) -> None:
    topic = new_topic(kafka_settings, partitions=2)
    group = f"paused-{topic}"
    member = Member(kafka_settings, group, topic)
    members.append(member)
    member.start()
    assert member.assigned.wait(60)
    produce(kafka_settings, topic, 10)
    assert wait_for(lambda: member.consumed == 10, 60), member.error

    args = ["--group", group, "--interval", "300ms", "--window", "3s", "--max-lag", "5", "--no-pipeline"]
    live = live_lag(*args, env=lag_env(rtfin_env))
    ok = live.wait_for(lambda d: d["groups"] and d["groups"][0]["state"] == "OK", 30)
    assert ok["groups"][0]["lag"] == 0 and ok["groups"][0]["members"] == 1

    member.paused.set()
    time.sleep(0.5)
    produce(kafka_settings, topic, 20)  # the paused member never gets to them
    seen: list[str] = []

    def record(doc: dict[str, Any]) -> bool:
        seen.append(doc["groups"][0]["state"])
        return seen[-1] == "STALLED"

    stalled = live.wait_for(record, 30)
    assert "LAGGING" in seen and seen.index("LAGGING") < seen.index("STALLED"), seen
    row = stalled["groups"][0]
    assert row["lag"] == 20 and row["members"] == 1 and row["consume_rate"] == 0
    assert row["trend"] in ("growing", "steady") and row["eta_s"] is None
    assert "without progress" in row["detail"]
    assert live.stop() == 0  # SIGTERM: a clean exit


def test_missing_group_and_topic_are_reported_not_a_crash(rtfin_env: dict[str, str], tmp_path: Path) -> None:
    env = lag_env(rtfin_env)
    args = [
        "lag",
        "--once",
        "--json",
        "--group",
        "no-such-group",
        "--topic",
        "no.such.topic",
        "--no-pipeline",
    ]
    out = run_cli(*args, env=env, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    rows = {(r["group"], r["topic"]): r for r in json.loads(out.stdout)["groups"]}
    assert rows[("no-such-group", "-")]["state"] == "MISSING"
    assert rows[("-", "no.such.topic")]["state"] == "MISSING"
    # a health check cannot pass on a group that does not exist
    out = run_cli(*args, "--max-lag", "10", env=env, cwd=tmp_path)
    assert out.returncode == 8 and "no-such-group" in out.stderr
    bad = run_cli("lag", "--once", "--interval", "soon", env=env, cwd=tmp_path)
    assert bad.returncode == 2 and "invalid --interval 'soon'" in bad.stderr


def test_table_output_once(kafka_settings: Any, rtfin_env: dict[str, str], tmp_path: Path) -> None:
    """`--once` without --json prints the table; `--wide` adds a row per partition."""
    topic = new_topic(kafka_settings, partitions=2)
    produce(kafka_settings, topic, 4)
    group = f"wide-{topic}"
    commit(kafka_settings, group, topic, {0: 0, 1: 0})
    out = run_cli(
        "lag", "--once", "--wide", "--group", group, "--no-pipeline", env=lag_env(rtfin_env), cwd=tmp_path
    )
    assert out.returncode == 0, out.stderr
    assert group in out.stdout and "OK" in out.stdout and "lag 4 msgs" in out.stdout  # fresh messages wait
    assert "[0] 0/" in out.stdout and "[1] 0/" in out.stdout
