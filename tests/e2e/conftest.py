"""The whole local stack, brought up once for the e2e module by `rtfin local up` (free ports, temp dir)."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import CACHE, run_cli

UP_TIMEOUT_S = 1200.0  # cold start of everything (Kafka, chDB, Spark + model, first dbt build, Superset)
SPEED = 120.0  # replay speed for the e2e run: two market hours per wall minute
# a day of news backlog (not the default week): the sentiment job scores it in minutes on a busy machine
REPLAY_FROM = "2025-01-07T14:25:00Z"
PORT_KEYS = ("KAFKA_PORT", "KAFKA_CONTROLLER_PORT", "CLICKHOUSE_PORT", "MARKET_PORT", "SUPERSET_PORT")


@dataclass
class StackRun:
    """A running `rtfin local up` under a temp dir; helpers to drive and inspect it."""

    cwd: Path
    env: dict[str, str]
    ports: dict[str, int]
    up_output: str = ""
    pids_seen: set[int] = field(default_factory=set)

    @property
    def data_dir(self) -> Path:
        return Path(self.env["RTFIN__LOCAL__DATA_DIR"])

    def cli(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        """`rtfin ARGS` as a user of the stack runs it: clients pointed at the stack's ports once it is up."""
        env = self.settings_env() if (self.data_dir / "run" / "stack.json").exists() else self.env
        return run_cli(*args, env=env, cwd=self.cwd, timeout=timeout)  # type: ignore[no-any-return]

    def status(self) -> dict[str, dict[str, Any]]:
        out = self.cli("local", "status", "--json", "--no-lag", timeout=120)
        assert out.returncode == 0, out.stderr
        rows = json.loads(out.stdout)["services"]
        return {r["service"]: r for r in rows}

    def landed(self, *names: str) -> list[str]:
        """The named stages that are not up (skipped, failed, ...): empty when all of them run or ran."""
        st = self.status()
        return [f"{n}: {st[n]['state']} {st[n]['note']}".strip() for n in names
                if n not in st or st[n]["state"] not in ("running", "done")]  # fmt: skip

    def require(self, *names: str) -> None:
        """Skip the calling test (with the reason) when a stage it needs has not landed or is not up."""
        missing = self.landed(*names)
        if missing:
            pytest.skip("stage(s) not available: " + "; ".join(missing))

    def logs(self, lines: int = 25) -> str:
        """The tail of every service log, for failure messages."""
        parts = []
        for log in sorted((self.data_dir / "logs").glob("*.log")):
            tail = log.read_text(errors="replace").splitlines()[-lines:]
            parts.append(f"---- {log.name} ----\n" + "\n".join(tail))
        return "\n".join(parts)

    def settings_env(self) -> dict[str, str]:
        """The environment every stage sees (clients pointed at the stack's ports)."""
        from rtfin_cli.stack.supervise import Stack

        stack = Stack.load(self.data_dir)
        assert stack is not None, "no stack.json: `rtfin local up` did not run"
        return {**self.env, **stack.env}

    @contextlib.contextmanager
    def environ(self) -> Iterator[None]:
        """os.environ as the stages see it, for in-process clients (restored afterwards)."""
        saved = dict(os.environ)
        os.environ.update(self.settings_env())
        try:
            yield
        finally:
            os.environ.clear()
            os.environ.update(saved)

    def query(self, sql: str) -> list[tuple[Any, ...]]:
        """Rows of a SELECT against the stack's ClickHouse endpoint, through rtfin's own client factory."""
        from rtfin_cli.settings import load_settings
        from rtfin_cli.warehouse.client import get_client

        with self.environ():
            ch = load_settings(environ=self.settings_env()).settings.clickhouse
            client = get_client(ch)
            try:
                return [tuple(r) for r in client.query(sql).result_rows]
            finally:
                client.close()

    def wait_until(self, what: str, check: Callable[[], Any], timeout: float, interval: float = 5.0) -> Any:
        """Poll ``check`` until it returns something truthy; fail with every service's log tail on timeout."""
        deadline = time.monotonic() + timeout
        last: Any = None
        while time.monotonic() < deadline:
            try:
                last = check()
                if last:
                    return last
            except Exception as exc:  # noqa: BLE001 - not there yet (table missing, server busy)
                last = f"{type(exc).__name__}: {str(exc)[:300]}"
            time.sleep(interval)
        pytest.fail(f"timed out after {timeout:.0f}s waiting for {what} (last: {last})\n{self.logs()}")


@pytest.fixture(scope="module")
def stack() -> Iterator[StackRun]:
    """`rtfin local up --with-dashboard` from nothing; always torn down (down, then kill what is left)."""
    from rtfin_cli.local.supervisor import free_port, stop_pid, supervised_pids

    # not pytest's numbered tmp dirs: parallel pytest sessions prune those while this stack still runs
    cwd = Path(tempfile.mkdtemp(prefix="rtfin-e2e-"))
    ports = {k: free_port() for k in PORT_KEYS}
    env = {k: v for k, v in os.environ.items() if not k.startswith("RTFIN")}
    env.update({f"RTFIN__LOCAL__{k}": str(v) for k, v in ports.items()})
    env.update(
        RTFIN__LOCAL__DATA_DIR=str(cwd / ".rtfin"),
        RTFIN__LOCAL__CACHE_DIR=str(CACHE),
        RTFIN__SENTIMENT__CHECKPOINT_DIR=str(cwd / ".rtfin" / "checkpoints" / "sentiment"),
        RTFIN__LOCAL__KAFKA_HEAP="384m",
        # small first micro-batches: labels reach the models long before the week of backlog is scored
        RTFIN__SENTIMENT__MAX_OFFSETS_PER_TRIGGER="200",
    )
    run = StackRun(cwd=cwd, env=env, ports=ports)
    try:
        try:
            # the dashboard comes with a second `up` in its own test: a slow Superset fails only that test
            out = run.cli(
                "local", "up", "--speed", f"{SPEED:g}", "--replay-from", REPLAY_FROM, timeout=UP_TIMEOUT_S
            )
        except subprocess.TimeoutExpired:
            pytest.fail(f"rtfin local up did not finish in {UP_TIMEOUT_S:.0f}s\n{run.logs()}")
        run.up_output = out.stdout + out.stderr
        if out.returncode != 0:
            pytest.fail(f"rtfin local up failed (exit {out.returncode}):\n{run.up_output}\n{run.logs()}")
        yield run
    finally:
        run.cli("local", "down", "--timeout", "20", timeout=300)
        for pid in supervised_pids(run.data_dir).values():  # safety net: never leave a process behind
            stop_pid(pid, 5)
        shutil.rmtree(cwd, ignore_errors=True)
