"""DDL, Kafka-engine SQL, error paths and loader resilience against the real endpoint and Kafka."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from tests.conftest import run_cli
from tests.integration.transform.conftest import Space, make_space
from tests.integration.transform.gen import generate, produce


def test_ddl_is_idempotent_and_recorded(space: Space) -> None:
    from rtfin_cli.warehouse import ddl

    client = space.client()
    first = ddl.apply(space.settings.clickhouse, client)
    assert first.applied == [f"{m.version:03d}_{m.name}" for m in ddl.migrations()]
    second = ddl.apply(space.settings.clickhouse, client)
    assert second.applied == [] and second.already == first.applied
    raw = space.settings.clickhouse.raw_database
    assert space.count(f"SELECT count() FROM {raw}._rtfin_migrations FINAL") == len(first.applied)
    engines = dict(
        client.query(f"SELECT name, engine FROM system.tables WHERE database = '{raw}'").result_rows
    )
    assert {engines[t] for t in ("news", "stock_aggs", "news_sentiment")} == {"ReplacingMergeTree"}
    for table in ("news", "stock_aggs", "news_sentiment"):  # the source position, renamed by 005
        names = client.query(
            f"SELECT name FROM system.columns WHERE database = '{raw}' AND table = '{table}'"
        )
        assert {"_topic", "_partition", "_offset"} <= {r[0] for r in names.result_rows}
        assert not {"_kafka_partition", "_kafka_offset"} & {r[0] for r in names.result_rows}

    space.settings.clickhouse.ttl_days = 90
    third = ddl.apply(space.settings.clickhouse, client)
    assert len(third.altered) == 3
    q = f"SELECT engine_full FROM system.tables WHERE database = '{raw}' AND name = 'news'"
    assert "toIntervalDay(90)" in client.command(q)
    assert ddl.apply(space.settings.clickhouse, client).altered == []


def test_kafka_engine_sql_parses_and_moves_rows(space: Space) -> None:
    """Every rendered statement parses; the views' SELECTs move valid rows and route the rest to errors."""
    from rtfin_cli.warehouse import ddl, kafka_engine
    from rtfin_cli.warehouse.records import columns

    client = space.client()
    for stmt in kafka_engine.render(space.settings, replace=True):
        formatted = client.command("SELECT formatQuery({q:String})", parameters={"q": stmt})
        assert formatted and "Kafka" in formatted or "VIEW" in formatted or "TABLE" in formatted
    ddl.apply(space.settings.clickhouse, client)
    raw = space.settings.clickhouse.raw_database
    client.command(kafka_engine.render(space.settings)[0])  # the errors table (no Kafka needed)
    # chDB cannot run the Kafka engine: stand in for a queue table with its columns + virtual columns.
    cols, _, _ = kafka_engine.SPECS["news_sentiment"]
    fake = f"{raw}.fake_queue"
    virtual = "_error String, _raw_message String, _topic String, _partition UInt64, _offset UInt64"
    cols_ddl = ", ".join(cols)
    client.command(f"CREATE TABLE {fake} ({cols_ddl}, {virtual}) ENGINE = MergeTree ORDER BY _offset")
    client.command(
        f"INSERT INTO {fake} (id, published_utc, tickers, label, score, sentiment, scored_at, _topic, "
        "_offset) VALUES "
        "('a1', '2024-06-03T12:00:00Z', ['AAPL'], 'positive', 0.9, 0.8, '1717416005000', 't', 1), "
        "('a2', '2024-06-03T12:00:00Z', [], 'great', 0.9, 0.8, '2024-06-03T12:00:05Z', 't', 2)"
    )
    client.command(
        f"INSERT INTO {fake} (_error, _raw_message, _topic, _offset) VALUES ('Cannot parse', '{{x', 't', 3)"
    )
    cols_sql = ", ".join(columns("news_sentiment"))
    client.command(
        f"INSERT INTO {raw}.news_sentiment ({cols_sql}) {kafka_engine.select_valid('news_sentiment', fake)}"
    )
    client.command(f"INSERT INTO {raw}.kafka_errors (topic, partition, offset, error, raw_message) "
                   f"{kafka_engine.select_errors('news_sentiment', fake)}")  # fmt: skip
    rows = client.query(
        f"SELECT id, toUnixTimestamp64Milli(scored_at), _topic, _offset FROM {raw}.news_sentiment"
    ).result_rows
    assert rows == [("a1", 1717416005000, "t", 1)]
    errors = client.query(f"SELECT offset, error FROM {raw}.kafka_errors ORDER BY offset").result_rows
    assert errors == [(2, "invalid record for news_sentiment"), (3, "Cannot parse")]


def test_kafka_engine_reads_news_insights_from_the_record_json(space: Space) -> None:
    """A news record's JSON, parsed as the news queue table parses it (JSONEachRow, the engine's input
    settings), keeps the provider's insights per ticker through the view's SELECT into the raw table."""
    import json

    from rtfin_cli.warehouse import ddl, kafka_engine
    from rtfin_cli.warehouse.records import columns

    client = space.client()
    ddl.apply(space.settings.clickhouse, client)
    raw = space.settings.clickhouse.raw_database
    cols, _, _ = kafka_engine.SPECS["news"]
    fake = f"{raw}.fake_news_queue"
    virtual = "_error String, _raw_message String, _topic String, _partition UInt64, _offset UInt64"
    client.command(f"CREATE TABLE {fake} ({', '.join(cols)}, {virtual}) ENGINE = MergeTree ORDER BY _offset")
    record = {"id": "n1", "published_utc": "2025-01-07T14:30:00Z", "title": "t", "tickers": ["AAPL", "MSFT"],
              "publisher": {"name": "Wire"}, "ingested_at": "2025-01-07T14:30:01Z", "unknown": 1,
              "insights": [{"ticker": "AAPL", "sentiment": "positive", "sentiment_reasoning": "beat"},
                           {"ticker": "MSFT", "sentiment": "neutral", "sentiment_reasoning": None}]}  # fmt: skip
    client.raw_insert(fake, [c.split()[0] for c in cols], json.dumps(record).encode(), fmt="JSONEachRow",
                      settings={"input_format_skip_unknown_fields": 1,
                                "input_format_json_read_numbers_as_strings": 1})  # fmt: skip
    client.command(
        f"INSERT INTO {raw}.news ({', '.join(columns('news'))}) {kafka_engine.select_valid('news', fake)}"
    )
    rows = client.query(f"SELECT id, insights.ticker, insights.sentiment, insights.sentiment_reasoning "
                        f"FROM {raw}.news").result_rows  # fmt: skip
    assert rows == [("n1", ["AAPL", "MSFT"], ["positive", "neutral"], ["beat", ""])]


def test_unreachable_or_wrong_password_is_one_line_naming_the_host(space: Space) -> None:
    env = {**space.env, "RTFIN__CLICKHOUSE__PASSWORD": "definitely-wrong"}
    out = run_cli("transform", "run", env=env, cwd=space.cwd)
    host = f"{space.settings.clickhouse.host}:{space.settings.clickhouse.port}"
    assert out.returncode == 5 and host in out.stderr.splitlines()[0] and "Traceback" not in out.stderr
    assert "definitely-wrong" not in out.stderr + out.stdout
    from rtfin_cli.local.supervisor import free_port

    port = free_port()
    out = run_cli("transform", "run", env={**space.env, "RTFIN__CLICKHOUSE__PORT": str(port)}, cwd=space.cwd)
    assert out.returncode == 4 and f":{port}" in out.stderr.splitlines()[0]
    assert len(out.stderr.strip().splitlines()) == 2  # the error and its hint


def test_ddl_failure_stops_before_dbt(space: Space) -> None:
    raw = space.settings.clickhouse.raw_database
    client = space.client()
    client.command(f"CREATE DATABASE IF NOT EXISTS {raw}")
    # A migrations table of the wrong shape: the DDL step fails, dbt must never start.
    client.command(f"CREATE TABLE {raw}._rtfin_migrations (x UInt8) ENGINE = MergeTree ORDER BY x")
    out = run_cli("transform", "run", env=space.env, cwd=space.cwd, timeout=300)
    assert out.returncode != 0 and out.stderr.startswith("error:") and "migrations" in out.stderr
    assert not (space.cwd / ".rtfin" / "dbt" / "target" / "run_results.json").exists()


def _wait(cond: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


def test_loader_survives_a_clickhouse_outage(kafka_broker: Any, tmp_path: Path) -> None:
    """Stop ClickHouse mid-stream: the loader retries, commits only what was inserted, loses nothing."""
    from pydantic import SecretStr

    from rtfin_cli.local.clickhouse import ClickHouseServer
    from rtfin_cli.local.supervisor import free_port
    from rtfin_cli.settings import ClickHouseSettings
    from rtfin_cli.warehouse import ddl
    from rtfin_cli.warehouse.loader import Loader

    server = ClickHouseServer(data_dir=tmp_path / "ch", port=free_port())
    server.password = server.credentials()[1]
    server.start(timeout=120)
    try:
        ch = ClickHouseSettings(host=server.host, port=server.port, password=SecretStr(server.password))
        sp = make_space(kafka_broker.bootstrap, ch, tmp_path)
        assert run_cli("topics", "create", env=sp.env, cwd=sp.cwd).returncode == 0
        ddl.apply(sp.settings.clickhouse, sp.client())
        data = generate(seed=5, articles=50, tickers=5, minutes=3, second_bars=0)
        loader = Loader(sp.settings, batch_s=0.2, max_backoff_s=1.0)
        thread = threading.Thread(target=loader.run, daemon=True)
        thread.start()
        produce(sp.settings.kafka.bootstrap, sp.topics, {"news_raw": data.messages()["news_raw"][:25]})
        _wait(lambda: loader.stats.inserted["news"] == 25, 120, "first batch")
        server.stop()
        produce(sp.settings.kafka.bootstrap, sp.topics, {"news_raw": data.messages()["news_raw"][25:]})
        _wait(lambda: loader.stats.retries >= 2, 120, "retries while ClickHouse is down")
        server.start(timeout=120)
        _wait(lambda: loader.stats.inserted["news"] == 50, 120, "the batch after the outage")
        loader.stop()
        thread.join(60)
        raw = sp.settings.clickhouse.raw_database
        assert sp.count(f"SELECT uniqExact(id) FROM {raw}.news") == 50
        from rtfin_cli.warehouse.ingest import loader_lag

        assert loader_lag(sp.settings)[sp.topics["news_raw"]] == 0  # type: ignore[index]
    finally:
        server.stop()


def test_sigterm_flushes_and_exits_zero(space: Space) -> None:
    from rtfin_cli.warehouse import ddl
    from rtfin_cli.warehouse.ingest import loader_lag

    assert run_cli("topics", "create", env=space.env, cwd=space.cwd).returncode == 0
    ddl.apply(space.settings.clickhouse, space.client())
    # Batches of 20 rows or 60 s: the first 20 rows flush on size, the last 10 only on SIGTERM.
    env = {
        **space.env,
        "RTFIN__CLICKHOUSE__LOADER_BATCH_S": "60",
        "RTFIN__CLICKHOUSE__LOADER_BATCH_ROWS": "20",
    }
    proc = subprocess.Popen([sys.executable, "-m", "rtfin_cli", "transform", "load"], env=env, cwd=space.cwd,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    raw = space.settings.clickhouse.raw_database
    try:
        data = generate(seed=9, articles=30, tickers=3, minutes=1, second_bars=0)
        produce(space.settings.kafka.bootstrap, space.topics, {"news_raw": data.messages()["news_raw"]})
        _wait(lambda: space.count(f"SELECT count() FROM {raw}.news") == 20, 120, "the first size-bound batch")
        time.sleep(3)  # the remaining 10 rows are consumed and buffered, not yet inserted
        assert space.count(f"SELECT count() FROM {raw}.news") == 20
        os.kill(proc.pid, signal.SIGTERM)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert space.count(f"SELECT count() FROM {raw}.news") == 30
    assert loader_lag(space.settings)[space.topics["news_raw"]] == 0  # type: ignore[index]
