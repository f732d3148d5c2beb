"""dbt-clickhouse, unmodified, builds a small project against the local endpoint: view, table (+ seed),
incremental (default and delete+insert) and materialized_view models, data tests and a unit test (which
dbt runs through session temporary tables), then a second incremental run."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("dbt.adapters.clickhouse")
clickhouse_connect = pytest.importorskip("clickhouse_connect")
PROJECT = Path(__file__).parent / "dbt_project"


def _dbt(args: list[str], project: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    dbt = Path(sys.executable).parent / "dbt"
    cmd = [str(dbt), *args, "--project-dir", str(project), "--profiles-dir", str(project)]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=project, timeout=300)


@pytest.mark.slow
def test_dbt_build_then_incremental_run(clickhouse_server: Any, tmp_path: Path) -> None:
    srv = clickhouse_server
    suffix = uuid.uuid4().hex[:6]
    raw, target = f"dbt_raw_{suffix}", f"dbt_out_{suffix}"
    project = tmp_path / "project"
    shutil.copytree(PROJECT, project)
    (project / "profiles.yml").write_text(
        f"""rtfin_ch_check:
  target: local
  outputs:
    local:
      type: clickhouse
      driver: http
      host: {srv.host}
      port: {srv.port}
      user: {srv.user}
      password: "{{{{ env_var('CH_TEST_PASSWORD') }}}}"
      schema: {target}
      threads: 2
"""
    )
    env = {**os.environ, "CH_TEST_PASSWORD": srv.password, "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}
    client = clickhouse_connect.get_client(
        host=srv.host, port=srv.port, username=srv.user, password=srv.password
    )
    client.command(f"CREATE DATABASE {raw}")
    client.command(
        f"CREATE TABLE {raw}.trades (trade_id UInt64, ticker String, price Float64, qty UInt32,"
        " traded_at DateTime64(3, 'UTC')) ENGINE = MergeTree ORDER BY trade_id"
    )
    rows = [
        (i, ["AAPL", "MSFT", "NVDA"][i % 3], 100.0 + i, 10, f"2024-01-01 00:00:{i:02d}") for i in range(30)
    ]
    client.insert(f"{raw}.trades", rows, column_names=["trade_id", "ticker", "price", "qty", "traded_at"])
    vars_ = ["--vars", f"{{raw_schema: {raw}}}"]

    build = _dbt(["build", *vars_], project, env)
    assert build.returncode == 0, build.stdout[-4000:] + build.stderr[-2000:]
    assert "ERROR=0" in build.stdout.replace(" ", "")
    assert "notional_is_price_times_qty" in build.stdout  # the unit test ran (temporary tables in a session)
    assert client.query(f"SELECT count(), sum(notional) FROM {target}.fct_trades").result_rows == [
        (30, sum((100.0 + i) * 10 for i in range(30)))
    ]
    assert client.query(f"SELECT ticker, trades FROM {target}.dim_ticker ORDER BY ticker").result_rows == [
        ("AAPL", 10), ("MSFT", 10), ("NVDA", 10)
    ]  # fmt: skip
    engines = dict(
        client.query(f"SELECT name, engine FROM system.tables WHERE database = '{target}'").result_rows
    )
    assert engines["stg_trades"] == "View"
    assert engines["mv_volume_mv"] == "MaterializedView"

    # new rows arrive: the materialized view sees them at insert time, the incremental model on its next run
    more = [(i, "NVDA", 200.0, 5, f"2024-01-01 00:01:{i - 30:02d}") for i in range(30, 40)]
    client.insert(f"{raw}.trades", more, column_names=["trade_id", "ticker", "price", "qty", "traded_at"])
    run = _dbt(["run", "--select", "fct_trades", "fct_trades_di", *vars_], project, env)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    assert client.query(f"SELECT count() FROM {target}.fct_trades FINAL").result_rows == [(40,)]
    # delete+insert re-wrote the overlapping window: still one row per trade, none lost
    assert client.query(f"SELECT count(), uniqExact(trade_id) FROM {target}.fct_trades_di").result_rows == [
        (40, 40)
    ]
    volume = client.query(
        f"SELECT ticker, sum(volume) FROM {target}.mv_volume GROUP BY ticker ORDER BY ticker"
    )
    assert volume.result_rows == [("AAPL", 100), ("MSFT", 100), ("NVDA", 150)]
    client.command(f"DROP DATABASE {raw}")
    client.command(f"DROP DATABASE {target}")
