"""Shared fixtures. Services are real and started once per session on free ports in a temp dir,
so several test runs (and a developer's own local stack) never collide."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / ".cache"
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests under tests/unit are `unit`, tests/integration `integration`, tests/e2e `e2e`."""
    for item in items:
        parts = Path(str(item.fspath)).relative_to(ROOT / "tests").parts
        if parts and parts[0] in ("unit", "integration", "e2e"):
            item.add_marker(getattr(pytest.mark, parts[0]))


@pytest.fixture(scope="session")
def kafka_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """A real single-node KRaft broker for the whole test session."""
    from rtfin_cli.local.kafka import KafkaBroker
    from rtfin_cli.local.supervisor import free_port

    broker = KafkaBroker(
        data_dir=tmp_path_factory.mktemp("kafka"),
        cache_dir=CACHE,
        port=free_port(),
        controller_port=free_port(),
    )
    broker.start(timeout=120)
    try:
        yield broker
    finally:
        broker.stop()


@pytest.fixture(scope="session")
def kafka_settings(kafka_broker: object):  # type: ignore[no-untyped-def]
    """KafkaSettings pointing at the session broker."""
    from rtfin_cli.settings import KafkaSettings

    return KafkaSettings(bootstrap=kafka_broker.bootstrap)  # type: ignore[attr-defined]


@pytest.fixture(scope="session")
def clickhouse_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """The real local ClickHouse endpoint (chDB behind the HTTP protocol) for the whole test session.

    Has .host, .port, .user, .password (generated) and .url."""
    from rtfin_cli.local.clickhouse import ClickHouseServer
    from rtfin_cli.local.supervisor import free_port

    server = ClickHouseServer(data_dir=tmp_path_factory.mktemp("clickhouse"), port=free_port())
    server.password = server.credentials()[1]
    server.start(timeout=120)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def clickhouse_settings(clickhouse_server: object):  # type: ignore[no-untyped-def]
    """ClickHouseSettings pointing at the session endpoint."""
    from pydantic import SecretStr

    from rtfin_cli.settings import ClickHouseSettings

    srv = clickhouse_server
    return ClickHouseSettings(host=srv.host, port=srv.port, user=srv.user, password=SecretStr(srv.password))  # type: ignore[attr-defined]


@pytest.fixture(scope="session")
def market_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """The market replay server (rtfin_cli.local.market.service.MarketServer) on a free port, speed 60, no rate
    limit. Shared: call ``.control("reset")`` and set the clock (``.control("clock", {...})``) in your test."""
    from rtfin_cli.local.market.service import MarketServer
    from rtfin_cli.local.supervisor import free_port

    server = MarketServer(
        data_dir=tmp_path_factory.mktemp("market"), port=free_port(), speed=60.0, rate_limit=0
    )
    server.start(timeout=60)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture()
def rtfin_env(kafka_broker: object, tmp_path: Path) -> dict[str, str]:
    """Environment for running the `rtfin` CLI against the session services from a temp cwd."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RTFIN")}
    env.update(
        RTFIN__KAFKA__BOOTSTRAP=kafka_broker.bootstrap,  # type: ignore[attr-defined]
        RTFIN__LOCAL__DATA_DIR=str(tmp_path / ".rtfin"),
        RTFIN__LOCAL__CACHE_DIR=str(CACHE),
    )
    return env


def run_cli(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None, timeout: float = 120):  # type: ignore[no-untyped-def]
    """Run `rtfin ARGS` as a user would (a real process); returns CompletedProcess."""
    return subprocess.run(
        [sys.executable, "-m", "rtfin_cli", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=timeout,
    )
