"""The local stack's plan, state handling and watchdog decisions (no services started)."""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path

from rtfin_cli.settings import load_settings
from rtfin_cli.stack import watch as stack_watch
from rtfin_cli.stack.plan import Step, StepKind, plan, stack_env
from rtfin_cli.stack.state import StepState
from rtfin_cli.stack.supervise import Stack
from tests.conftest import run_cli

ENV = {"RTFIN__LOCAL__KAFKA_PORT": "19092", "RTFIN__LOCAL__CLICKHOUSE_PORT": "18123",
       "RTFIN__LOCAL__MARKET_PORT": "18765", "RTFIN__LOCAL__SUPERSET_PORT": "18088"}  # fmt: skip


def _settings():  # type: ignore[no-untyped-def]
    return load_settings(environ=ENV).settings


def test_plan_order_and_options() -> None:
    names = [st.name for st in plan(_settings())]
    assert names[:4] == ["watchdog", "kafka", "clickhouse", "market"]
    assert names.index("topics") < names.index("news") < names.index("loader") < names.index("models")
    assert "superset" not in names and "sentiment" in names
    full = [st.name for st in plan(_settings(), with_dashboard=True, no_model=True)]
    assert "sentiment" not in full and full.index("models") < full.index("superset") < full.index("dashboard")
    ports = {st.name: st.ports for st in plan(_settings(), with_dashboard=True)}
    assert ports["kafka"][0] == 19092 and ports["clickhouse"] == (18123,) and ports["superset"] == (18088,)


def test_stack_env_points_clients_at_local_ports() -> None:
    env = stack_env(_settings(), speed=30)
    assert env["RTFIN__KAFKA__BOOTSTRAP"] == "127.0.0.1:19092"
    assert env["RTFIN__CLICKHOUSE__PORT"] == "18123"
    assert env["RTFIN__POLYGON__REST_URL"] == "http://127.0.0.1:18765"
    assert env["RTFIN__LOCAL__MARKET_SPEED"] == "30" and Path(env["RTFIN__LOCAL__DATA_DIR"]).is_absolute()


def test_the_stack_runs_the_offline_model_on_onnx_unless_a_runtime_is_chosen() -> None:
    env = stack_env(_settings())
    assert (env["RTFIN__SENTIMENT__RUNTIME"], env["RTFIN__SENTIMENT__WORKERS"]) == ("onnx", "1")
    chosen = load_settings(environ=ENV | {"RTFIN__SENTIMENT__RUNTIME": "torch"}).settings
    hub = load_settings(environ=ENV | {"RTFIN__SENTIMENT__MODEL": "ProsusAI/finbert"}).settings
    assert "RTFIN__SENTIMENT__RUNTIME" not in stack_env(
        chosen
    ) and "RTFIN__SENTIMENT__RUNTIME" not in stack_env(hub)


def test_the_stack_gives_the_job_a_small_heap_and_lean_jvm_options_unless_chosen() -> None:
    from rtfin_cli.stack.plan import LEAN_JAVA_OPTIONS

    env = stack_env(_settings())
    assert env["RTFIN__SENTIMENT__DRIVER_MEMORY"] == "256m"
    assert (
        env["RTFIN__SENTIMENT__JAVA_OPTIONS"] == LEAN_JAVA_OPTIONS and "-XX:+UseSerialGC" in LEAN_JAVA_OPTIONS
    )
    lean = load_settings(environ=ENV | env).settings.sentiment  # what the stage's settings become
    assert (lean.driver_memory, lean.java_options) == ("256m", LEAN_JAVA_OPTIONS)
    mine = {"RTFIN__SENTIMENT__DRIVER_MEMORY": "2g", "RTFIN__SENTIMENT__JAVA_OPTIONS": "-XX:+UseG1GC"}
    chosen = stack_env(load_settings(environ=ENV | mine).settings)
    assert "RTFIN__SENTIMENT__DRIVER_MEMORY" not in chosen and "RTFIN__SENTIMENT__JAVA_OPTIONS" not in chosen


def test_backoff_is_exponential_and_bounded() -> None:
    delays = [stack_watch.backoff(n) for n in range(10)]
    assert delays[:4] == [1, 2, 4, 8] and max(delays) == stack_watch.MAX_BACKOFF_S


def _stack(tmp_path: Path) -> tuple[Stack, Step]:
    step = Step("worker", StepKind.PROCESS, ("no-such-command",), module="rtfin_cli")
    stack = Stack(tmp_path / ".rtfin", [step], {}, tmp_path)
    stack.save()
    return stack, step


def test_watchdog_schedules_restart_with_backoff_then_gives_up(tmp_path: Path) -> None:
    stack, _ = _stack(tmp_path)
    now = time.time()
    stack.set_state("worker", StepState("running", since=now, restarts=[now - 30, now - 20]))
    stack_watch.check_once(stack, now)
    st = stack.state("worker")
    assert st.state == "running" and st.next_restart_at == now + stack_watch.backoff(2)
    crashes = [now - i for i in range(1, stack_watch.MAX_RESTARTS + 1)]
    stack.set_state("worker", StepState("running", since=now, restarts=crashes))
    stack_watch.check_once(stack, now)
    st = stack.state("worker")
    assert st.state == "failed" and "gave up after" in st.note


def test_status_of_a_stack_never_started(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RTFIN")}
    env.update(ENV, RTFIN__LOCAL__DATA_DIR=str(tmp_path / ".rtfin"))
    out = run_cli("local", "status", "--json", env=env, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert {r["service"]: r["state"] for r in doc["services"]}["kafka"] == "stopped" and doc["lag"] is None
    assert doc["verify"] is None
    # the last `rtfin verify` result (kept in the data dir) is shown
    last = {"ok": False, "at_ms": 1_700_000_000_000, "failing": ["rtfin.news.raw[1]"], "absent_from_marts": 0}
    (tmp_path / ".rtfin").mkdir(exist_ok=True)
    (tmp_path / ".rtfin" / "verify-last.json").write_text(json.dumps(last))
    out = run_cli("local", "status", "--no-lag", env={**env, "COLUMNS": "200"}, cwd=tmp_path)
    assert out.returncode == 0 and "verify: FAILED at 2023-11-14 22:13:20Z" in out.stdout, out.stdout
    assert "rtfin.news.raw[1]" in out.stdout
    out = run_cli("local", "logs", "nope", env=env, cwd=tmp_path)
    assert out.returncode == 2 and "no log for service 'nope'" in out.stderr


def test_busy_port_is_a_clear_error_naming_its_holder(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        env = {k: v for k, v in os.environ.items() if not k.startswith("RTFIN")}
        env.update(RTFIN__LOCAL__DATA_DIR=str(tmp_path / ".rtfin"), RTFIN__LOCAL__KAFKA_PORT=str(port))
        try:
            out = run_cli("local", "up", env=env, cwd=tmp_path, timeout=120)
        finally:  # `up` started its watchdog before it met the busy port: leave nothing running
            run_cli("local", "down", "--timeout", "5", env=env, cwd=tmp_path, timeout=120)
    assert out.returncode == 7, out.stdout + out.stderr
    assert f"port {port} needed by kafka is already in use by" in out.stderr
    assert f"(pid {os.getpid()})" in out.stderr
