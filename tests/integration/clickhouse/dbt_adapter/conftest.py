"""dbt's adapter test framework (``dbt-tests-adapter``, the ``dbt.tests.fixtures.project`` fixtures) pointed
at the local endpoint: each test class gets its own schema (a database) on the session endpoint, its
dbt project in a temp dir and its dbt logs there too (the framework defaults to ``<rootdir>/logs``)."""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Iterator
from typing import Any

import pytest

if (
    importlib.util.find_spec("dbt.tests.fixtures") is None
    or importlib.util.find_spec("dbt.adapters.clickhouse") is None
):
    collect_ignore_glob = ["test_*.py"]  # the dev and dbt extras are not installed
else:
    from dbt.tests.fixtures.project import *  # noqa: F403 - the framework's fixtures, as its plugin provides them


@pytest.fixture(scope="class")  # type: ignore[no-redef]
def dbt_profile_target(clickhouse_server: Any) -> dict[str, Any]:
    """The dbt-clickhouse target of the local endpoint (what dbt-clickhouse's own suite builds for a server)."""
    srv = clickhouse_server
    return {
        "type": "clickhouse", "threads": 2, "driver": "http", "host": srv.host, "port": srv.port,
        "user": srv.user, "password": srv.password, "secure": False, "check_exchange": False,
        "use_lw_deletes": True, "custom_settings": {"input_format_skip_unknown_fields": 1},
    }  # fmt: skip


@pytest.fixture(scope="class")  # type: ignore[no-redef]
def logs_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    path = str(tmp_path_factory.mktemp("dbt-logs"))
    os.environ["DBT_LOG_PATH"] = path
    yield path
    os.environ.pop("DBT_LOG_PATH", None)
