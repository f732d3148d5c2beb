"""The dashboard against a real local Superset and the local ClickHouse endpoint: sync, chart data,
screenshot, export round trip, Preset auth, bad input."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT, run_cli
from tests.integration.dashboard.conftest import ARTIFACTS, DATABASE, TIMINGS, make_env

pytestmark = pytest.mark.timeout(600)
ASSETS = ROOT / "superset_assets"
PRICE = "Intraday price (% from session open)"
SEARCH = "Search news (title words, tickers)"
HEALTH = "Pipeline health"


def _client(env: dict[str, str]) -> Any:
    from rtfin_cli.dashboard.sync import connect
    from rtfin_cli.settings import load_settings

    return connect(load_settings(environ=env).settings, "superset")


def _sync(env: dict[str, str], *extra: str, cwd: Path) -> dict[str, Any]:
    t0 = time.monotonic()
    out = run_cli("dashboard", "sync", "--json", *extra, env=env, cwd=cwd)
    assert out.returncode == 0, out.stderr
    TIMINGS.setdefault("sync_s", round(time.monotonic() - t0, 1))
    return dict(json.loads(out.stdout))


@pytest.fixture(scope="module")
def synced(superset_server: Any, clickhouse_server: Any, reporting_tables: dict[str, int],
           tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:  # fmt: skip
    """Sync twice (idempotency is checked on these two results); later tests reuse the imported dashboard."""
    env = make_env(superset_server, clickhouse_server)
    cwd = tmp_path_factory.mktemp("sync")
    first = _sync(env, cwd=cwd)
    second = _sync(env, cwd=cwd)
    return {"first": first, "second": second}


def test_dry_run_lists_assets_without_credentials(dash_env: dict[str, str], tmp_path: Path) -> None:
    out = run_cli("dashboard", "sync", "--dry-run", env=dash_env, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    names = ("Real-time finance", "Top 50 trending tickers", PRICE, "Intraday volume", "Latest news",
             "rpt_trending_tickers_7d", "latest_news", "dim_ticker", "news_keywords", "Pipeline health",
             "rpt_pipeline_health", "databases/rtfin.yaml")  # fmt: skip
    for name in names:
        assert name in out.stdout
    assert dash_env["RTFIN__CLICKHOUSE__PASSWORD"] not in out.stdout + out.stderr
    client = _client(dash_env)
    try:  # this module's first test: nothing was imported before, and the dry run imported nothing
        assert client.count("dashboard", "(filters:!((col:slug,opr:eq,value:rtfin)))") == 0
    finally:
        client.close()


def test_sync_twice_leaves_one_dashboard_and_every_chart_returns_rows(
    dash_env: dict[str, str], synced: dict[str, Any]
) -> None:
    first, second = synced["first"], synced["second"]
    assert first["dashboard_id"] == second["dashboard_id"]
    assert sorted(second["charts"]) == [PRICE, "Intraday volume", "Latest news", HEALTH,
                                        "Top 50 trending tickers (7 days)"]  # fmt: skip
    client = _client(dash_env)
    try:
        assert (
            client.count("dashboard", "(filters:!((col:dashboard_title,opr:eq,value:'Real-time finance')))")
            == 1
        )
        assert client.count("chart", "(filters:!((col:slice_name,opr:sw,value:'Intraday price')))") == 1
        dash = client.dashboard("rtfin")
        assert dash is not None
        meta = json.loads(dash["json_metadata"])
        assert meta["refresh_frequency"] == 30
        filters = {f["name"]: f for f in meta["native_filter_configuration"]}
        assert filters["Ticker"]["targets"][0]["column"]["name"] == "ticker"
        assert filters[SEARCH]["targets"][0]["column"]["name"] == "keyword"
        for ds in client.get_json("/api/v1/dataset/", "datasets", q="(page_size:100)")["result"]:
            assert ds["schema"] == DATABASE
        rows = {}
        for chart in client.dashboard_charts(int(dash["id"])):
            form = chart["form_data"]
            dataset_id = str(form["datasource"]).split("__")[0]
            dataset = client.get_json(f"/api/v1/dataset/{dataset_id}", "dataset")["result"]
            # the ticker filter's column exists in every market chart's dataset, so it drives them all
            if chart["slice_name"] != HEALTH:  # the health row is out of the Ticker filter's scope
                assert "ticker" in {c["column_name"] for c in dataset["columns"]}, dataset["table_name"]
            result = client.chart_data(int(chart["id"]))["result"][0]
            assert not result.get("error"), (chart["slice_name"], result.get("error"))
            rows[chart["slice_name"]] = result["rowcount"]
            assert result["rowcount"] > 0, chart["slice_name"]
            # Superset's "row limit reached" notice shows when rowcount >= row_limit
            assert result["rowcount"] < int(form["row_limit"]), chart["slice_name"]
        news = next(c for c in client.dashboard_charts(int(dash["id"])) if c["slice_name"] == "Latest news")
        data = client.chart_data(int(news["id"]))["result"][0]["data"]
        assert data[0]["title_link"].startswith('<a href="https://')
        published = [r["published_et"] for r in data]
        assert published == sorted(published, reverse=True)  # newest first
        # the provider's label per ticker beside the model's, where the article has an insight
        provider = [r["provider"] for r in data]
        assert all(re.fullmatch(r"([A-Z.]+ (positive|negative|neutral)(, |$))*", p) for p in provider), (
            provider
        )
        assert any(p and p.split()[1] != r["label"] for p, r in zip(provider, data, strict=True)), provider
        (ARTIFACTS / "dashboard_chart_rows.json").parent.mkdir(parents=True, exist_ok=True)
        (ARTIFACTS / "dashboard_chart_rows.json").write_text(json.dumps(rows, indent=2) + "\n")
    finally:
        client.close()


def _query(client: Any, chart: dict[str, Any], filters: list[dict[str, Any]]) -> dict[str, Any]:
    """A chart's saved query with the native filters' WHERE terms, as the dashboard sends them."""
    full = client.get_json(f"/api/v1/chart/{chart['id']}", "chart")["result"]
    qc = json.loads(full["query_context"])
    for query in qc["queries"]:
        query["filters"] = filters
    resp = client._send("POST", "/api/v1/chart/data", json=qc)
    assert resp.status_code == 200, resp.text[:300]
    return dict(resp.json()["result"][0])


def _tickers(row: dict[str, Any]) -> list[str]:
    return str(row["tickers"]).split(",")


def test_filters_apply_to_chart_queries(dash_env: dict[str, str], synced: dict[str, Any]) -> None:
    """The ticker filter narrows every chart, the news before its top 50; the search matches title words
    and tickers; with no ticker selected, price and volume show the default tickers."""
    client = _client(dash_env)
    try:
        dash = client.dashboard("rtfin")
        assert dash is not None
        charts = {c["slice_name"]: c for c in client.dashboard_charts(int(dash["id"]))}
        nvda = [{"col": "ticker", "op": "IN", "val": ["NVDA"]}]
        for name, chart in charts.items():
            if name == HEALTH:
                continue
            result = _query(client, chart, nvda)
            assert result["rowcount"] > 0, name
            if "ticker" in result["colnames"]:
                assert {r["ticker"] for r in result["data"]} == {"NVDA"}, name
        news = charts["Latest news"]
        newest = _query(client, news, [])["data"]
        for_nvda = _query(client, news, nvda)["data"]
        assert all("NVDA" in _tickers(r) for r in for_nvda)
        assert len(for_nvda) > sum("NVDA" in _tickers(r) for r in newest)  # filtered before the top 50
        words = _query(client, news, [{"col": "keyword", "op": "IN", "val": ["shares"]}])["data"]
        assert words and all("shares" in r["title_link"].lower() for r in words)
        symbol = _query(client, news, [{"col": "keyword", "op": "IN", "val": ["nvda"]}])["data"]
        assert {r["title_link"] for r in for_nvda} <= {r["title_link"] for r in symbol}
        with _warehouse(dash_env) as ch:
            default = {
                r[0] for r in ch.query(f"SELECT ticker FROM {DATABASE}.rpt_default_tickers").result_rows
            }
        assert len(default) == 5
        for name in (PRICE, "Intraday volume"):
            assert {r["ticker"] for r in _query(client, charts[name], [])["data"]} == default, name
    finally:
        client.close()


@contextmanager
def _warehouse(env: dict[str, str]) -> Iterator[Any]:
    from rtfin_cli.settings import load_settings
    from rtfin_cli.warehouse.client import get_client

    client = get_client(load_settings(environ=env).settings)
    try:
        yield client
    finally:
        client.close()


def _filter_options(client: Any, name: str) -> set[str]:
    """The values a native select filter offers: its target column of its target dataset, as the filter's own
    query reads them (Superset's select filter asks for up to 1000 values)."""
    dash = client.dashboard("rtfin")
    meta = json.loads(dash["json_metadata"])
    target = next(f for f in meta["native_filter_configuration"] if f["name"] == name)["targets"][0]
    column = target["column"]["name"]
    query = {"columns": [column], "metrics": [], "row_limit": 1000, "orderby": [[column, True]]}
    body = {"datasource": {"id": target["datasetId"], "type": "table"}, "queries": [query],
            "result_format": "json", "result_type": "full"}  # fmt: skip
    resp = client._send("POST", "/api/v1/chart/data", json=body)
    assert resp.status_code == 200, resp.text[:300]
    return {str(r[column]) for r in resp.json()["result"][0]["data"]}


def test_ticker_filter_offers_every_ticker_in_the_data(
    dash_env: dict[str, str], synced: dict[str, Any]
) -> None:
    with _warehouse(dash_env) as ch:
        raw = DATABASE + "_raw"
        in_data = {r[0] for r in ch.query(
            f"SELECT DISTINCT sym FROM {raw}.stock_aggs UNION DISTINCT "
            f"SELECT DISTINCT arrayJoin(tickers) FROM {raw}.news WHERE notEmpty(tickers)").result_rows}  # fmt: skip
    client = _client(dash_env)
    try:
        options = _filter_options(client, "Ticker")
    finally:
        client.close()
    assert len(in_data) > 30 and in_data <= options, sorted(in_data - options)


def test_pipeline_health_row_reads_the_warehouse(
    dash_env: dict[str, str], synced: dict[str, Any], reporting_tables: dict[str, int]
) -> None:
    """Per stage: rows landed, seconds since the last load and rows/min over 5 minutes, from the raw tables."""
    client = _client(dash_env)
    try:
        dash = client.dashboard("rtfin")
        assert dash is not None
        chart = next(c for c in client.dashboard_charts(int(dash["id"])) if c["slice_name"] == HEALTH)
        rows = {r["stage"]: r for r in client.chart_data(int(chart["id"]))["result"][0]["data"]}
    finally:
        client.close()
    assert list(rows) == ["market bars", "news", "sentiment", "models (dbt)"]  # pipeline order
    with _warehouse(dash_env) as ch:
        for stage, table in (
            ("market bars", "stock_aggs"),
            ("news", "news"),
            ("sentiment", "news_sentiment"),
        ):
            row = rows[stage]
            assert row["total_rows"] == reporting_tables[table], stage
            since, recent = ch.query(
                f"SELECT dateDiff('second', max(_loaded_at), now64(3, 'UTC')), "
                f"countIf(_loaded_at >= now64(3, 'UTC') - INTERVAL 5 MINUTE) FROM {DATABASE}_raw.{table}"
            ).result_rows[0]
            assert 0 <= row["last_load_s"] <= since, stage  # read before this query
            assert row["rows_per_min"] in (0, reporting_tables[table] / 5) and recent in (
                0,
                reporting_tables[table],
            )
    assert rows["models (dbt)"]["last_load_s"] is not None and rows["models (dbt)"]["total_rows"] > 30


@pytest.mark.slow
def test_screenshot_shows_every_chart(
    dash_env: dict[str, str], superset_server: Any, synced: dict[str, Any], tmp_path: Path
) -> None:
    from tests.integration.dashboard.browser import screenshot, session_cookie

    if not Path("/usr/bin/chromium").exists():
        pytest.fail("chromium is not installed: run `make setup` (apt-get install chromium)")
    url = run_cli("dashboard", "open", env=dash_env, cwd=tmp_path)
    assert url.returncode == 0, url.stderr
    assert url.stdout.strip().startswith(superset_server.url + "/superset/dashboard/")
    cookie = session_cookie(superset_server.url, "admin", superset_server.admin_password())
    out = ARTIFACTS / "dashboard.png"
    t0 = time.monotonic()
    state = screenshot(url.stdout.strip() + "?standalone=1", cookie, out, tmp_path)
    TIMINGS["screenshot_s"] = round(time.monotonic() - t0, 1)
    assert state["canvases"] >= 2 and state["rows"] >= 3 and state["errors"] == 0, state  # 2 series, 3 tables
    assert state["limit_warnings"] == 0, state  # no chart shows Superset's "row limit reached" notice
    assert out.stat().st_size > 50_000 and out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    shutil.copyfile(out, ROOT / "docs" / "dashboard.png")  # the picture in README and docs/dashboard.md
    client = _client(dash_env)
    try:  # as Superset stores them: the price axis is not forced to 0, the filter offers every ticker
        dash = client.dashboard("rtfin")
        assert dash is not None
        price = next(c for c in client.dashboard_charts(int(dash["id"])) if c["slice_name"] == PRICE)
        assert price["form_data"]["truncateYAxis"] is True, price["form_data"]
        assert price["form_data"].get("y_axis_bounds") in (None, [None, None])
        options = _filter_options(client, "Ticker")
    finally:
        client.close()
    with _warehouse(dash_env) as ch:
        tickers = {r[0] for r in ch.query(f"SELECT ticker FROM {DATABASE}.dim_ticker").result_rows}
    assert tickers and tickers <= options


def test_export_sync_export_round_trips_without_diff(
    dash_env: dict[str, str], synced: dict[str, Any], tmp_path: Path
) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    shutil.copytree(ASSETS, first)
    out = run_cli("dashboard", "export", "--out", str(first), "--json", env=dash_env, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["written"] == [], "export differs from the committed superset_assets/"
    env = {**dash_env, "RTFIN__DASHBOARD__ASSETS_DIR": str(first)}
    _sync(env, cwd=tmp_path)
    shutil.copytree(first, second)
    out = run_cli("dashboard", "export", "--json", env={**env, "RTFIN__DASHBOARD__ASSETS_DIR": str(second)},
                  cwd=tmp_path)  # fmt: skip
    assert out.returncode == 0, out.stderr
    diff = subprocess.run(["diff", "-r", str(first), str(second)], capture_output=True, text=True)
    assert diff.returncode == 0, diff.stdout
    assert dash_env["RTFIN__CLICKHOUSE__PASSWORD"] not in "".join(
        p.read_text() for p in second.rglob("*.yaml")
    )


def test_ui_edit_is_a_small_diff(dash_env: dict[str, str], synced: dict[str, Any], tmp_path: Path) -> None:
    client = _client(dash_env)
    try:
        dash = client.dashboard("rtfin")
        assert dash is not None
        chart = next(
            c for c in client.dashboard_charts(int(dash["id"])) if c["slice_name"] == "Intraday volume"
        )
        resp = client._send("PUT", f"/api/v1/chart/{chart['id']}", json={"description": "Edited in the UI."})
        assert resp.status_code == 200, resp.text
    finally:
        client.close()
    work = tmp_path / "assets"
    shutil.copytree(ASSETS, work)
    env = {**dash_env, "RTFIN__DASHBOARD__ASSETS_DIR": str(work)}
    out = run_cli("dashboard", "export", "--json", env=env, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["written"] == ["charts/Intraday_volume.yaml"]
    rel = "charts/Intraday_volume.yaml"
    diff = subprocess.run(["diff", str(ASSETS / rel), str(work / rel)], capture_output=True, text=True)
    changed = [line for line in diff.stdout.splitlines() if line[:1] in "<>"]
    assert changed == ["< description: Traded volume per minute bar of the selected tickers, by default the top trending.",
                       "> description: Edited in the UI."]  # fmt: skip
    _sync(dash_env, cwd=tmp_path)  # put the committed version back


def test_preset_backend_token_exchange_and_sync(
    dash_env: dict[str, str], superset_server: Any, tmp_path: Path
) -> None:
    from tests.integration.dashboard.preset_server import PresetServer

    with PresetServer(
        superset_server.url, "admin", superset_server.admin_password(), "tok-id", "tok-secret"
    ) as preset:
        prefix = "RTFIN__DASHBOARD__"
        env = {**dash_env, prefix + "BACKEND": "preset", prefix + "PRESET_WORKSPACE": preset.url,
               prefix + "PRESET_API_URL": preset.url, prefix + "PRESET_API_TOKEN": "tok-id",
               prefix + "PRESET_API_SECRET": "tok-secret"}  # fmt: skip
        result = _sync(env, cwd=tmp_path)
        assert result["target"] == "preset" and result["url"].startswith(preset.url)
        assert ("POST", "/v1/auth/") in preset.calls and ("POST", "/api/v1/assets/import/") in preset.calls
        shutil.copytree(ASSETS, tmp_path / "from-preset")
        out = run_cli("dashboard", "export", "--target", "preset", "--out", str(tmp_path / "from-preset"), "--json",
                      env=env, cwd=tmp_path)  # fmt: skip
        assert out.returncode == 0, out.stderr
        assert json.loads(out.stdout)["written"] == []  # the workspace holds exactly the committed assets
        bad = run_cli(
            "dashboard", "sync", env={**env, "RTFIN__DASHBOARD__PRESET_API_SECRET": "wrong"}, cwd=tmp_path
        )
        assert bad.returncode == 5, bad.stderr
        lines = bad.stderr.strip().splitlines()
        assert lines[0].startswith("error: Preset at 127.0.0.1:") and "refused the API token" in lines[0]
        assert "wrong" not in bad.stderr and "Traceback" not in bad.stderr


def test_unreachable_superset_names_the_host(dash_env: dict[str, str], tmp_path: Path) -> None:
    from rtfin_cli.local.supervisor import free_port

    port = free_port()
    env = {**dash_env, "RTFIN__DASHBOARD__URL": f"http://127.0.0.1:{port}", "RTFIN__DASHBOARD__PASSWORD": "x"}
    out = run_cli("dashboard", "sync", env=env, cwd=tmp_path)
    assert out.returncode == 4
    first = out.stderr.strip().splitlines()[0]
    assert (
        first.startswith(f"error: cannot reach Superset at 127.0.0.1:{port}")
        and "Traceback" not in out.stderr
    )


def test_yaml_syntax_error_names_the_file_and_imports_nothing(
    dash_env: dict[str, str], tmp_path: Path
) -> None:
    broken = tmp_path / "assets"
    shutil.copytree(ASSETS, broken)
    chart = broken / "charts" / "Intraday_price_from_session_open.yaml"
    chart.write_text(
        chart.read_text().replace("viz_type: echarts_timeseries_line\n", "viz_type: [unclosed\n", 1)
    )
    (broken / "charts" / "Extra_chart.yaml").write_text("slice_name: must not be imported\n")
    out = run_cli(
        "dashboard", "sync", env={**dash_env, "RTFIN__DASHBOARD__ASSETS_DIR": str(broken)}, cwd=tmp_path
    )
    assert out.returncode == 6
    first = out.stderr.strip().splitlines()[0]
    assert first.startswith(f"error: {chart}:") and "invalid YAML" in first
    client = _client(dash_env)
    try:
        assert client.count("chart", "(filters:!((col:slice_name,opr:eq,value:'must not be imported')))") == 0
    finally:
        client.close()


def test_server_side_rejection_rolls_back(
    dash_env: dict[str, str], synced: dict[str, Any], tmp_path: Path
) -> None:
    """A bundle Superset rejects (a schema error rtfin does not check locally) imports nothing at all."""
    broken = tmp_path / "assets"
    shutil.copytree(ASSETS, broken)
    news = broken / "charts" / "Latest_news.yaml"
    news.write_text(news.read_text().replace("certified_by: null", "certified_by: [1, 2]"))
    trending = broken / "charts" / "Top_50_trending_tickers_7_days.yaml"
    trending.write_text(
        trending.read_text().replace("slice_name: Top 50", "slice_name: SHOULD NOT APPEAR Top 50")
    )
    out = run_cli(
        "dashboard", "sync", env={**dash_env, "RTFIN__DASHBOARD__ASSETS_DIR": str(broken)}, cwd=tmp_path
    )
    assert out.returncode == 6, out.stderr
    first = out.stderr.strip().splitlines()[0]
    assert first.startswith("error: 127.0.0.1:") and "asset import rejected, nothing imported" in first
    client = _client(dash_env)
    try:
        assert client.count("chart", "(filters:!((col:slice_name,opr:sw,value:'SHOULD NOT APPEAR')))") == 0
        assert client.count("chart", "(filters:!((col:slice_name,opr:sw,value:'Top 50 trending')))") == 1
    finally:
        client.close()


def test_local_superset_cli_status_and_double_start(superset_server: Any, tmp_path: Path) -> None:
    """`rtfin local superset status|start` on the session Superset (same data dir and port)."""
    env = {**make_env(superset_server, None), "RTFIN__LOCAL__SUPERSET_PORT": str(superset_server.port)}
    out = run_cli("local", "superset", "status", "--json", env=env, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert doc["running"] and doc["healthy"] and doc["pid"] == superset_server.status().pid
    again = run_cli("local", "superset", "start", env=env, cwd=tmp_path)
    assert again.returncode == 7 and "Superset is already running" in again.stderr.splitlines()[0]
    config = (superset_server.home / "superset_config.py").read_text()
    assert 'SECRET_KEY = (_HOME / "secret_key")' in config  # the key itself is not in the config
    for name in ("secret_key", "admin_password"):
        assert (superset_server.home / name).stat().st_mode & 0o777 == 0o600
