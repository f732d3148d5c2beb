"""Fixtures of the endpoint's client tests: a clickhouse-connect client and a throwaway database."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest


@pytest.fixture()
def client(clickhouse_server: Any) -> Iterator[Any]:
    clickhouse_connect = pytest.importorskip("clickhouse_connect")
    c = clickhouse_connect.get_client(
        host=clickhouse_server.host, port=clickhouse_server.port,
        username=clickhouse_server.user, password=clickhouse_server.password,
    )  # fmt: skip
    yield c
    c.close()


@pytest.fixture()
def db(client: Any) -> Iterator[str]:
    name = f"t_{uuid.uuid4().hex[:8]}"
    client.command(f"CREATE DATABASE {name}")
    yield name
    client.command(f"DROP DATABASE IF EXISTS {name}")
