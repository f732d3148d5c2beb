"""superset_assets/ rendering, validation and the export normaliser (no services)."""

from __future__ import annotations

import io
import json
import shutil
import zipfile
from pathlib import Path
from typing import Any

import pytest
import yaml

from rtfin_cli.dashboard import assets, export
from rtfin_cli.errors import DataError
from rtfin_cli.settings import load_settings

ROOT = Path(__file__).resolve().parents[2]
ASSETS = ROOT / "superset_assets"


def _ctx(**env: str) -> dict[str, object]:
    settings = load_settings(environ={f"RTFIN__{k.upper()}": v for k, v in env.items()}).settings
    return assets.context_from_settings(settings, has_password=True)


def test_render_uses_profile_connection_and_schema() -> None:
    ctx = _ctx(clickhouse__host="ch.example.com", clickhouse__port="8443", clickhouse__secure="true",
               clickhouse__user="reader", clickhouse__database="fin")  # fmt: skip
    bundle = assets.render(ASSETS, ctx)
    db = bundle.docs["databases/rtfin.yaml"]
    assert db["sqlalchemy_uri"] == "clickhousedb://reader:XXXXXXXXXX@ch.example.com:8443/fin?secure=true"
    for path, doc in bundle.of_kind("datasets").items():
        assert doc["schema"] == "fin", path
        assert "${{" not in bundle.files[path]
    assert "FROM fin.rpt_latest_news" in bundle.docs["datasets/rtfin/latest_news.yaml"]["sql"]
    dash = bundle.docs["dashboards/Real-time_finance.yaml"]
    assert dash["metadata"]["refresh_frequency"] == 30
    # query_context is committed as YAML, sent as the JSON string Superset stores
    for path, doc in bundle.of_kind("charts").items():
        assert json.loads(doc["query_context"])["queries"], path


def test_no_password_means_no_password_in_uri() -> None:
    settings = load_settings(environ={}).settings
    bundle = assets.render(ASSETS, assets.context_from_settings(settings, has_password=False))
    assert (
        bundle.docs["databases/rtfin.yaml"]["sqlalchemy_uri"] == "clickhousedb://default@127.0.0.1:8123/rtfin"
    )


PRICE = "Intraday price (% from session open)"


def _charts() -> dict[str, dict[str, Any]]:
    return {str(d["slice_name"]): d for d in assets.render(ASSETS, _ctx()).of_kind("charts").values()}


def test_dashboard_contract() -> None:
    """Four market charts and the pipeline's health, a Ticker filter over every ticker (dim_ticker) that drives
    every market chart, a news search, 30 s refresh."""
    bundle = assets.render(ASSETS, _ctx())
    charts = _charts()
    assert set(charts) == {"Top 50 trending tickers (7 days)", PRICE, "Intraday volume", "Latest news",
                           "Pipeline health"}  # fmt: skip
    assert charts[PRICE]["viz_type"] == "echarts_timeseries_line"
    assert charts["Intraday volume"]["viz_type"] == "echarts_timeseries_bar"
    trending = charts["Top 50 trending tickers (7 days)"]["params"]
    assert {"ticker", "last_price", "change_pct", "article_count", "avg_sentiment"} <= set(
        trending["all_columns"]
    )
    assert {f["column"] for f in trending["conditional_formatting"]} == {"avg_sentiment", "change_pct"}
    news = charts["Latest news"]["params"]
    assert news["all_columns"] == [
        "published_et",
        "title_link",
        "tickers",
        "label",
        "confidence",
        "provider",  # the news provider's label beside the model's (#25 item 5)
        "publisher",
    ]
    datasets = {d["uuid"]: d for d in bundle.of_kind("datasets").values()}
    tables = {d["table_name"] for d in datasets.values()}
    assert tables == {"rpt_trending_tickers_7d", "rpt_intraday_price", "rpt_intraday_volume", "latest_news",
                      "dim_ticker", "news_keywords", "rpt_pipeline_health"}  # fmt: skip
    meta = bundle.docs["dashboards/Real-time_finance.yaml"]["metadata"]
    targets = {f["name"]: f["targets"][0] for f in meta["native_filter_configuration"]}
    assert {name: t["column"]["name"] for name, t in targets.items()} == {
        "Ticker": "ticker", "Search news (title words, tickers)": "keyword"}  # fmt: skip
    assert (
        datasets[targets["Ticker"]["datasetUuid"]]["table_name"] == "dim_ticker"
    )  # every ticker in the data
    assert (
        datasets[targets["Search news (title words, tickers)"]["datasetUuid"]]["table_name"]
        == "news_keywords"
    )
    dash = bundle.docs["dashboards/Real-time_finance.yaml"]
    ids = {
        n["meta"]["sliceName"]: n["meta"]["chartId"]
        for n in dash["position"].values()
        if isinstance(n, dict) and n["type"] == "CHART"
    }
    ticker = next(f for f in meta["native_filter_configuration"] if f["name"] == "Ticker")
    assert ticker["scope"]["excluded"] == [ids["Pipeline health"]]
    for (
        name,
        chart,
    ) in charts.items():  # the Ticker filter applies to every market chart: its dataset has the column
        if name != "Pipeline health":
            assert "ticker" in {c["column_name"] for c in datasets[chart["dataset_uuid"]]["columns"]}, name


def test_price_axis_is_its_own_scale_and_default_selection() -> None:
    """% from the session open on an axis that is not forced to 0 (ECharts scale: truncateYAxis); price and
    volume show the default tickers while the Ticker filter is empty."""
    price = _charts()[PRICE]["params"]
    assert price["truncateYAxis"] is True and price.get("y_axis_bounds") in (None, [None, None])
    assert "change_pct" in price["metrics"][0]["sqlExpression"] and price["y_axis_format"].endswith("%")
    bundle = assets.render(ASSETS, _ctx())
    for name in ("rpt_intraday_price", "rpt_intraday_volume"):
        sql = bundle.docs[f"datasets/rtfin/{name}.yaml"]["sql"]
        assert "{% if not filter_values('ticker') %}" in sql and "rpt_default_tickers" in sql


def _dataset_rows(table: str, sql: str, project: dict[str, object]) -> int:
    """The most rows a dataset returns: its own LIMIT, or what caps the view it reads (a dbt var, its stages)."""
    import re

    if m := re.search(r"\bLIMIT (\d+)\s*$", sql.strip(), re.I):
        return int(m.group(1))
    caps = {"rpt_trending_tickers_7d": int(project["vars"]["trending_top"]), "rpt_pipeline_health": 4}  # type: ignore[index]
    return caps[table]


def test_no_chart_asks_for_a_row_limit_its_dataset_can_reach() -> None:
    """Superset shows "row limit reached" when rowcount >= row_limit: every table chart's row_limit is above
    what its dataset can return (the view's own top N); the time series ask for every series."""
    project = yaml.safe_load((ROOT / "dbt" / "dbt_project.yml").read_text())
    bundle = assets.render(ASSETS, _ctx())
    datasets = {d["uuid"]: d for d in bundle.of_kind("datasets").values()}
    for name, chart in _charts().items():
        params, query = chart["params"], json.loads(chart["query_context"])["queries"][0]
        assert params["row_limit"] == query["row_limit"], name
        if chart["viz_type"] == "table":
            ds = datasets[chart["dataset_uuid"]]
            assert params["row_limit"] > _dataset_rows(ds["table_name"], ds["sql"] or "", project), name
        else:
            assert params["series_limit"] == 0 and query["series_limit"] == 0, name


def test_yaml_syntax_error_names_file_and_line(tmp_path: Path) -> None:
    shutil.copytree(ASSETS, tmp_path / "a")
    bad = tmp_path / "a" / "charts" / "Latest_news.yaml"
    lines = bad.read_text().splitlines()
    lines[2] = "description: [oops"
    bad.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError) as err:
        assets.render(tmp_path / "a", _ctx())
    assert str(err.value).startswith(f"{bad}:") and "invalid YAML" in str(err.value)
    assert "\n" not in str(err.value)


def test_unknown_placeholder_and_dangling_reference(tmp_path: Path) -> None:
    shutil.copytree(ASSETS, tmp_path / "a")
    ds = tmp_path / "a" / "datasets" / "rtfin" / "rpt_intraday_price.yaml"
    ds.write_text(ds.read_text().replace("${{ schema }}", "${{ schemaa }}", 1))
    with pytest.raises(DataError, match=r"rpt_intraday_price.yaml.*template error"):
        assets.render(tmp_path / "a", _ctx())
    ds.write_text(ds.read_text().replace("${{ schemaa }}", "${{ schema }}"))
    chart = tmp_path / "a" / "charts" / "Intraday_price_from_session_open.yaml"
    doc = yaml.safe_load(chart.read_text())
    doc["dataset_uuid"] = "00000000-0000-0000-0000-000000000000"
    chart.write_text(assets.dump_yaml(doc))
    with pytest.raises(
        DataError,
        match=r"Intraday_price_from_session_open.yaml: dataset_uuid .* matches no file in datasets/",
    ):
        assets.render(tmp_path / "a", _ctx())


def test_not_an_assets_folder(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no metadata.yaml"):
        assets.render(tmp_path, _ctx())


def test_bundle_zip_has_one_root_and_every_file() -> None:
    bundle = assets.render(ASSETS, _ctx())
    names = zipfile.ZipFile(io.BytesIO(bundle.zip_bytes())).namelist()
    assert {n.split("/", 1)[0] for n in names} == {assets.BUNDLE_ROOT}
    assert {n.split("/", 1)[1] for n in names} == set(bundle.files)


def _as_export(bundle: assets.Bundle, chart_ids: dict[str, int], ds_id: int = 7) -> bytes:
    """What Superset exports after importing ``bundle``: server ids, JSON query_context, id'd names."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for path, doc in bundle.docs.items():
            doc = json.loads(json.dumps(doc))
            if path.startswith("charts/"):
                doc["params"]["datasource"] = f"{ds_id}__table"
                qc = json.loads(doc["query_context"])
                qc["datasource"]["id"] = ds_id
                qc["form_data"]["slice_id"] = chart_ids[doc["uuid"]]
                doc["query_context"] = json.dumps(qc)
                path = path.replace(".yaml", f"_{chart_ids[doc['uuid']]}.yaml")
            if path.startswith("dashboards/"):
                old = {}
                for node in doc["position"].values():
                    if isinstance(node, dict) and node.get("type") == "CHART":
                        old[node["meta"]["chartId"]] = chart_ids[node["meta"]["uuid"]]
                        node["meta"]["chartId"] = chart_ids[node["meta"]["uuid"]]
                for flt in doc["metadata"]["native_filter_configuration"]:
                    flt["scope"]["excluded"] = [old[i] for i in flt["scope"]["excluded"]]
                glob = doc["metadata"]["global_chart_configuration"]
                glob["chartsInScope"] = sorted(old[i] for i in glob["chartsInScope"])
            zf.writestr(f"dashboard_export_20260101T000000/{path}", yaml.safe_dump(doc, sort_keys=False))
    return buf.getvalue()


def test_export_normalises_back_to_the_committed_files(tmp_path: Path) -> None:
    bundle = assets.render(ASSETS, _ctx())
    ids = {str(d["uuid"]): 100 + i for i, d in enumerate(bundle.of_kind("charts").values())}
    files = export.normalize(export.read_zip(_as_export(bundle, ids)), ASSETS, "rtfin", 30)
    for rel, text in files.items():
        assert text == (ASSETS / rel).read_text(), rel
    shutil.copytree(ASSETS, tmp_path / "a")
    (tmp_path / "a" / "charts" / "Stale.yaml").write_text("slice_name: gone\n")
    result = export.write(tmp_path / "a", files)
    assert result.written == [] and result.removed == ["charts/Stale.yaml"]


def test_export_of_another_schema_is_templated_back() -> None:
    bundle = assets.render(ASSETS, _ctx(clickhouse__database="prod_fin"))
    ids = {str(d["uuid"]): 5 + i for i, d in enumerate(bundle.of_kind("charts").values())}
    files = export.normalize(export.read_zip(_as_export(bundle, ids, 42)), ASSETS, "prod_fin", 30)
    text = files["datasets/rtfin/latest_news.yaml"]
    assert "prod_fin" not in text and "FROM ${{ schema }}.rpt_latest_news" in text


def test_read_zip_rejects_garbage() -> None:
    with pytest.raises(DataError, match="not a zip"):
        export.read_zip(b"<html>login</html>")


# Superset 6.1's conditional-formatting comparators (superset-frontend, @superset-ui/chart-controls
# `Comparator` enum); any other operator string is silently ignored by the table chart.
COMPARATORS = {"None", ">", "<", "≥", "≤", "=", "≠", "< x <", "≤ x ≤", "≤ x <", "< x ≤", "begins with",
               "ends with", "containing", "not containing", "is true", "is false", "is null", "is not null"}  # fmt: skip


def test_conditional_formatting_uses_superset_comparators() -> None:
    for name, chart in _charts().items():
        for rule in chart["params"].get("conditional_formatting") or []:
            assert rule["operator"] in COMPARATORS, (name, rule)
