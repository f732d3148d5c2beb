"""The pipeline view: producer freshness, the sentiment/loader groups and warehouse data age on the real
local ClickHouse endpoint (raw tables from the warehouse DDL, a reporting model created here)."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from typing import Any

from tests.conftest import run_cli
from tests.integration.lag.conftest import commit, lag_env, new_topic, produce


def _ts(t: float) -> str:
    """A DateTime64(3, 'UTC') literal: plain VALUES, nothing for the server to interpret."""
    import datetime as dt

    return "'" + dt.datetime.fromtimestamp(t, dt.UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] + "'"


def _warehouse(ch: Any) -> tuple[Any, float]:
    """Raw tables through rtfin's DDL in fresh databases, rows with known event times; returns (settings, now)."""
    from rtfin_cli.warehouse.client import get_client
    from rtfin_cli.warehouse.ddl import apply

    tag = uuid.uuid4().hex[:8]
    ch = ch.model_copy(update={"raw_database": f"lag_raw_{tag}", "database": f"lag_dbt_{tag}"})
    apply(ch)
    client = get_client(ch)
    now = time.time()
    raw = ch.raw_database
    client.command(
        f"INSERT INTO {raw}.news (id, published_utc, title, publisher, tickers, keywords, ingested_at) VALUES "
        f"('a1', {_ts(now - 120)}, 't', ('p','','',''), ['AAPL'], [], {_ts(now)}),"
        f"('a2', {_ts(now - 900)}, 't', ('p','','',''), ['MSFT'], [], {_ts(now)})"
    )
    client.command(
        f"INSERT INTO {raw}.stock_aggs (ev, sym, s, e, o, h, l, c, v, ingested_at) VALUES "
        f"('AM', 'AAPL', {int((now - 90) * 1000)}, {int((now - 30) * 1000)}, 1, 1, 1, 1, 10, {_ts(now)})"
    )
    # news_sentiment stays empty: the sentiment job has not scored anything yet
    client.command(f"CREATE DATABASE IF NOT EXISTS {ch.database}")
    client.command(
        f"CREATE TABLE {ch.database}.rpt_latest_news (article_id String, published_at DateTime64(3, 'UTC'), "
        f"scored_at DateTime64(3, 'UTC')) ENGINE = MergeTree ORDER BY article_id"
    )
    client.command(f"INSERT INTO {ch.database}.rpt_latest_news VALUES ('a1', {_ts(now - 300)}, {_ts(now)})")
    return ch, now


def test_warehouse_freshness(clickhouse_settings: Any) -> None:
    from rtfin_cli.lag.warehouse import FreshnessProbe

    ch, made = _warehouse(clickhouse_settings)
    probe = FreshnessProbe(ch)
    t0 = time.time()
    res = probe.read(t0)
    probe.close()
    assert res.status == "ok"
    by_table = {t.table: t for t in res.tables}
    assert set(by_table) == {"news", "stock_aggs", "news_sentiment", "rpt_latest_news", "rpt_trending_tickers_7d",
                             "rpt_intraday_price", "rpt_intraday_volume"}  # fmt: skip
    slack = t0 - made + 0.01  # rows were stamped relative to `made`, the probe measures at t0
    news, aggs = by_table["news"], by_table["stock_aggs"]
    assert news.state == "OK" and news.column == "published_utc" and news.rows == 2
    assert 120 - 0.01 <= news.age_s <= 120 + slack  # the newest of the two articles
    assert aggs.state == "OK" and aggs.column == "e" and 30 - 0.01 <= aggs.age_s <= 30 + slack  # epoch ms
    assert by_table["news_sentiment"].state == "IDLE"  # no rows yet
    rpt = by_table["rpt_latest_news"]
    assert rpt.state == "OK" and rpt.column == "published_at" and 300 - 0.01 <= rpt.age_s <= 300 + slack
    assert (
        by_table["rpt_intraday_price"].state == "MISSING"
        and "does not exist" in by_table["rpt_intraday_price"].detail
    )


def test_unreachable_clickhouse_is_shown_not_a_crash() -> None:
    from rtfin_cli.lag.warehouse import FreshnessProbe
    from rtfin_cli.local.supervisor import free_port
    from rtfin_cli.settings import ClickHouseSettings

    res = FreshnessProbe(ClickHouseSettings(port=free_port(), connect_timeout_s=1)).read(time.time())
    assert res.status == "unreachable" and res.tables == [] and res.error


def test_pipeline_stages_end_to_end(
    kafka_settings: Any, clickhouse_settings: Any, rtfin_env: dict[str, str], tmp_path: Path
) -> None:
    """`rtfin lag --once --json` names every stage with its lag or data age."""
    ch, _ = _warehouse(clickhouse_settings)
    news = new_topic(kafka_settings, partitions=1, prefix="lagnews")
    aggs = new_topic(kafka_settings, partitions=1, prefix="lagaggs")
    scored = new_topic(kafka_settings, partitions=1, prefix="lagscored")
    newest_ms = int(time.time() * 1000) - 45_000
    produce(kafka_settings, news, 10, ts_ms=lambda i: newest_ms - (9 - i) * 1000)
    sentiment_group, loader_group = f"sent-{news}", f"load-{news}"
    commit(kafka_settings, sentiment_group, news, {0: 4})  # 6 articles wait for scoring
    commit(kafka_settings, loader_group, news, {0: 10})  # the loader is caught up
    env = {
        **lag_env(rtfin_env),
        "RTFIN__KAFKA__TOPICS__NEWS_RAW": news, "RTFIN__KAFKA__TOPICS__STOCKS_AGGS": aggs,
        "RTFIN__KAFKA__TOPICS__NEWS_SENTIMENT": scored,
        "RTFIN__SENTIMENT__GROUP": sentiment_group, "RTFIN__LAG__LOADER_GROUP": loader_group,
        "RTFIN__CLICKHOUSE__HOST": ch.host, "RTFIN__CLICKHOUSE__PORT": str(ch.port),
        "RTFIN__CLICKHOUSE__PASSWORD": ch.password.get_secret_value(),
        "RTFIN__CLICKHOUSE__RAW_DATABASE": ch.raw_database, "RTFIN__CLICKHOUSE__DATABASE": ch.database,
    }  # fmt: skip
    t0 = time.time()
    out = run_cli("lag", "--once", "--json", "--group", sentiment_group, env=env, cwd=tmp_path)
    t1 = time.time()
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert ch.password.get_secret_value() not in out.stdout + out.stderr
    stages = {(s["name"], s["source"]): s for s in doc["stages"]}
    producer = stages[("news producer", news)]
    newest = newest_ms / 1000  # ages are measured at some moment between t0 and t1
    # nothing new for 45 s (> the 30 s window); without the replay a quiet feed cannot be told from a stop
    assert producer["state"] == "IDLE" and t0 - newest - 0.01 <= producer["age_s"] <= t1 - newest + 0.01
    assert stages[("stocks producer", aggs)]["state"] == "IDLE"  # no messages yet
    sentiment = stages[("sentiment job", sentiment_group)]
    # nobody consumes: watched for the settle time without progress, the oldest article waits > window
    assert sentiment["lag"] == 6 and sentiment["state"] == "STALLED", sentiment
    waiting = newest - 5  # the 5th article (offset 4) is the oldest unconsumed one
    assert t0 - waiting - 0.01 <= sentiment["time_lag_s"] <= t1 - waiting + 0.01
    loader = stages[("loader (loader)", loader_group)]
    assert loader["lag"] == 0 and loader["time_lag_s"] == 0
    raw_news = stages[("warehouse", f"{ch.raw_database}.news.published_utc")]
    assert raw_news["state"] == "OK" and 120 <= raw_news["age_s"] <= 180
    assert stages[("warehouse", f"{ch.raw_database}.news_sentiment.scored_at")]["state"] == "IDLE"
    assert stages[("reporting", f"{ch.database}.rpt_latest_news.published_at")]["state"] == "OK"
    assert doc["warehouse"]["status"] == "ok"
    # the rows show only the requested group; the loader's group stays in the pipeline section
    assert [r["group"] for r in doc["groups"]] == [sentiment_group]
