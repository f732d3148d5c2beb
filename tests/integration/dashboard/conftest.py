"""Session fixtures for the dashboard tests: a real local Superset (own virtualenv, free port, tmp data
dir) and the reporting tables in the session ClickHouse endpoint."""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import CACHE, ROOT

ARTIFACTS = ROOT / "tests" / "artifacts"
DATABASE = "rtfin_dash"  # not the default `rtfin`/`rtfin_raw`: other tests build dbt models there
TIMINGS: dict[str, float] = {}


def _template_dir() -> Path:
    """An initialised Superset home (metadata db after `db upgrade` + `init`, admin user) reused across
    sessions, keyed by the installed Superset version: initialisation takes ~45 s, a copy ~0.1 s."""
    venv = CACHE / "venvs" / "superset" / "lib"
    versions = sorted(p.name for p in venv.glob("python*/site-packages/apache_superset-*.dist-info"))
    return CACHE / "superset-test-home" / (versions[-1] if versions else "unknown")


@pytest.fixture(scope="session")
def superset_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from rtfin_cli.local.superset import LocalSuperset
    from rtfin_cli.local.supervisor import free_port

    data_dir = tmp_path_factory.mktemp("superset")
    template = _template_dir()
    if (template / ".initialized").exists():
        shutil.copytree(template, data_dir / "superset")
    sup = LocalSuperset(data_dir=data_dir, cache_dir=CACHE, port=free_port())
    t0 = time.monotonic()
    sup.init()
    TIMINGS["superset_init_s"] = round(time.monotonic() - t0, 1)
    if not (template / ".initialized").exists():
        shutil.copytree(data_dir / "superset", template, dirs_exist_ok=True)
    t0 = time.monotonic()
    sup.start(timeout=300)
    TIMINGS["superset_start_s"] = round(time.monotonic() - t0, 1)
    try:
        yield sup
    finally:
        sup.stop()
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        (ARTIFACTS / "dashboard_timings.json").write_text(json.dumps(TIMINGS, indent=2) + "\n")


@pytest.fixture(scope="session")
def reporting_tables(clickhouse_server: Any, tmp_path_factory: pytest.TempPathFactory) -> dict[str, int]:
    """Replay records in the raw tables, then the real dbt project builds the reporting models."""
    from rtfin_cli.settings import load_settings
    from tests.conftest import run_cli
    from tests.integration.dashboard import reporting_data

    env = {**make_env(None, clickhouse_server), "RTFIN__LOCAL__DATA_DIR": str(tmp_path_factory.mktemp("dbt"))}
    counts = reporting_data.land(load_settings(environ=env).settings)
    t0 = time.monotonic()
    # a selection (the reporting models and their parents, with their tests) skips source freshness
    models = ["+rpt_trending_tickers_7d", "+rpt_intraday_price", "+rpt_intraday_volume", "+rpt_latest_news",
              "+dim_ticker", "rpt_default_tickers", "rpt_pipeline_health"]  # fmt: skip
    out = run_cli("transform", "run", "--json", "--select", " ".join(models), env=env, cwd=ROOT, timeout=900)
    TIMINGS["dbt_build_s"] = round(time.monotonic() - t0, 1)
    assert out.returncode == 0, (out.stdout[-2000:], out.stderr[-2000:])
    return counts


@pytest.fixture()
def dash_env(
    superset_server: Any, clickhouse_server: Any, reporting_tables: dict[str, int]
) -> dict[str, str]:
    return make_env(superset_server, clickhouse_server)


def make_env(superset_server: Any, clickhouse_server: Any) -> dict[str, str]:
    """Environment for `rtfin dashboard ...` against the session Superset and ClickHouse."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RTFIN")}
    if superset_server is not None:
        env.update(
            RTFIN__DASHBOARD__URL=superset_server.url, RTFIN__LOCAL__DATA_DIR=str(superset_server.data_dir)
        )
    if clickhouse_server is not None:
        env.update(
            RTFIN__CLICKHOUSE__HOST=clickhouse_server.host,
            RTFIN__CLICKHOUSE__PORT=str(clickhouse_server.port),
            RTFIN__CLICKHOUSE__USER=clickhouse_server.user,
            RTFIN__CLICKHOUSE__PASSWORD=clickhouse_server.password,
        )
    env.update(
        RTFIN__DASHBOARD__BACKEND="superset",
        RTFIN__DASHBOARD__ASSETS_DIR=str(ROOT / "superset_assets"),
        RTFIN__LOCAL__CACHE_DIR=str(CACHE),
        RTFIN__CLICKHOUSE__RAW_DATABASE=DATABASE + "_raw",
        RTFIN__CLICKHOUSE__DATABASE=DATABASE,
    )
    return env
