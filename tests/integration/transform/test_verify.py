"""`rtfin verify` against the session Kafka, the local ClickHouse endpoint, the loader and dbt: a clean load
verifies (exit 0); rows deleted from a raw table are named by exact offset (exit 8); a duplicate with
another identity that survives FINAL is named; dead-lettered and superseded records are not missing."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import run_cli
from tests.integration.transform.conftest import Space, make_space
from tests.integration.transform.gen import BAD_RECORDS, generate, produce

pytestmark = [pytest.mark.integration, pytest.mark.slow]  # ~3 min: a load and a dbt build


def _cli(space: Space, *args: str, timeout: float = 300) -> Any:
    return run_cli(*args, env=space.env, cwd=space.cwd, timeout=timeout)


def _verify(space: Space, *args: str) -> tuple[int, dict[str, Any]]:
    out = _cli(space, "verify", "--json", *args)
    assert out.returncode in (0, 8), out.stderr[-2000:] + out.stdout[-2000:]
    return out.returncode, json.loads(out.stdout)


@pytest.fixture(scope="module")
def loaded(
    kafka_broker: Any, clickhouse_settings: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Space]:
    """Topics with a small dataset plus bad records, loaded by the loader and built by dbt."""
    space = make_space(kafka_broker.bootstrap, clickhouse_settings, tmp_path_factory.mktemp("verify"))
    data = generate(seed=23, articles=60, tickers=6, minutes=4, second_bars=1)
    assert _cli(space, "topics", "create").returncode == 0
    produce(space.settings.kafka.bootstrap, space.topics, data.messages())
    produce(space.settings.kafka.bootstrap, space.topics, BAD_RECORDS)
    assert _cli(space, "transform", "ddl").returncode == 0
    load = _cli(space, "transform", "load", "--once", "--timeout", "120", "--json")
    assert load.returncode == 0, load.stderr[-2000:]
    run = _cli(space, "transform", "run", "--json", timeout=600)
    assert run.returncode == 0, run.stderr[-2000:] + run.stdout[-2000:]
    yield space


def _partition(doc: dict[str, Any], topic: str, part: int) -> dict[str, Any]:
    return next(p for p in doc["partitions"] if p["topic"] == topic and p["partition"] == part)


def test_clean_load_verifies_and_dead_letters_are_not_missing(loaded: Space) -> None:
    code, doc = _verify(loaded)
    assert code == 0, doc
    assert doc["ok"] and len(doc["partitions"]) == 6  # three topics x two partitions
    dead = sum(p["dead_lettered"] for p in doc["partitions"])
    assert dead == sum(len(v) for v in BAD_RECORDS.values())
    assert all(p["present"] > 0 and p["end"] > p["start"] for p in doc["partitions"])
    assert {m["mart"] for m in doc["marts"]} == {"fct_stock_bars", "fct_news_sentiment"}
    assert all(m["built"] and m["absent"] == 0 for m in doc["marts"])
    last = json.loads((Path(loaded.settings.local.path("verify-last.json"))).read_text())
    assert last["ok"] is True and last["failing"] == []


def test_deleted_rows_are_named_by_offset_and_exit_8(loaded: Space) -> None:
    raw, topic = loaded.settings.clickhouse.raw_database, loaded.topics["stocks_aggs"]
    client = loaded.client()
    # 10 offsets of partition 0: three runs (a lone one, a pair, seven in a row) away from the ends
    offs = sorted(
        r[0] for r in client.query(f"SELECT _offset FROM {raw}.stock_aggs WHERE _partition = 0").result_rows
    )
    victims = [offs[3], offs[6], offs[7], *offs[10:17]]
    keep = f"{raw}.stock_aggs_kept"
    client.command(f"CREATE TABLE {keep} AS {raw}.stock_aggs")
    cond = f"_partition = 0 AND _offset IN ({', '.join(map(str, victims))})"
    client.command(f"INSERT INTO {keep} SELECT * FROM {raw}.stock_aggs WHERE {cond}")
    client.command(f"DELETE FROM {raw}.stock_aggs WHERE {cond}")
    try:
        code, doc = _verify(loaded, "--topic", topic)
        assert code == 8
        p0 = _partition(doc, topic, 0)
        assert p0["missing"] == 10 and not p0["ok"]
        assert p0["missing_ranges"] == [[victims[0]] * 2, [victims[1], victims[2]], [victims[3], victims[-1]]]
        assert _partition(doc, topic, 1)["ok"] and [p["topic"] for p in doc["partitions"]] == [topic] * 2
        screen = _cli(loaded, "verify", "--topic", topic)
        assert screen.returncode == 8 and f"{victims[1]}-{victims[2]}" in screen.stdout
    finally:
        client.command(f"INSERT INTO {raw}.stock_aggs SELECT * FROM {keep}")
        client.command(f"DROP TABLE {keep}")
    assert _verify(loaded, "--topic", topic)[0] == 0


def test_duplicate_with_another_identity_is_reported(loaded: Space) -> None:
    """A row holding an already loaded offset under another identity and version survives FINAL."""
    raw, topic = loaded.settings.clickhouse.raw_database, loaded.topics["news_raw"]
    client = loaded.client()
    pos = client.query(
        f"SELECT _partition, _offset FROM {raw}.news FINAL ORDER BY _partition, _offset LIMIT 1"
    )
    part, off = pos.result_rows[0]
    cond = f"_partition = {part} AND _offset = {off}"
    client.command(
        f"INSERT INTO {raw}.news SELECT * REPLACE (concat(id, '-copy') AS id, "
        f"ingested_at + INTERVAL 1 SECOND AS ingested_at) FROM {raw}.news WHERE {cond}"
    )
    # the same identity again with a newer version is no duplicate: FINAL keeps one
    client.command(
        f"INSERT INTO {raw}.news SELECT * REPLACE (ingested_at + INTERVAL 2 SECOND AS ingested_at) "
        f"FROM {raw}.news WHERE {cond} AND NOT endsWith(id, '-copy')"
    )
    try:
        code, doc = _verify(loaded, "--topic", topic)
        p = _partition(doc, topic, part)
        assert code == 8 and p["duplicates"] == 1 and p["duplicate_offsets"] == [[off, 2]], p
        assert p["missing"] == 0
    finally:
        client.command(f"DELETE FROM {raw}.news WHERE endsWith(id, '-copy')")
    assert _verify(loaded, "--topic", topic)[0] == 0


def test_superseded_version_is_not_missing_and_mart_gap_is_named(loaded: Space) -> None:
    """A record replayed later (same identity, newer version) leaves its first offset without a row once
    merged: the identity is found, so it is not missing. A raw bar dbt has not built yet is not counted;
    one removed from the built mart is named."""
    raw, db = loaded.settings.clickhouse.raw_database, loaded.settings.clickhouse.database
    topic = loaded.topics["stocks_aggs"]
    client = loaded.client()
    first = client.query(f"SELECT sym, ev, s FROM {raw}.stock_aggs FINAL ORDER BY _offset LIMIT 1")
    row = first.result_rows[0]
    bar_cond = (
        f"sym = '{row[0]}' AND ev = '{row[1]}' AND bar_start = fromUnixTimestamp64Milli({row[2]}, 'UTC')"
    )
    client.command(f"CREATE TABLE {db}.bars_kept AS {db}.fct_stock_bars")
    client.command(f"INSERT INTO {db}.bars_kept SELECT * FROM {db}.fct_stock_bars WHERE {bar_cond}")
    client.command(f"DELETE FROM {db}.fct_stock_bars WHERE {bar_cond}")
    try:
        code, doc = _verify(loaded, "--topic", topic)
        bars = next(m for m in doc["marts"] if m["mart"] == "fct_stock_bars")
        assert code == 8 and bars["absent"] == 1 and bars["sample"] == [f"{row[0]}|{row[1]}|{row[2]}"]
        assert all(p["ok"] for p in doc["partitions"])
    finally:
        client.command(f"INSERT INTO {db}.fct_stock_bars SELECT * FROM {db}.bars_kept")
        client.command(f"DROP TABLE {db}.bars_kept")
    # replay one bar with a newer version, load it, and drop the older row (as a merge would)
    bar = {"ev": row[1], "sym": row[0], "s": row[2], "e": row[2] + 60_000, "o": 1.0, "h": 1.0, "l": 1.0,
           "c": 1.0, "v": 1.0, "ingested_at": "2100-01-01T00:00:00Z"}  # fmt: skip
    produce(
        loaded.settings.kafka.bootstrap, loaded.topics, {"stocks_aggs": [(row[0], json.dumps(bar).encode())]}
    )
    assert _cli(loaded, "transform", "load", "--once", "--timeout", "60").returncode == 0
    client.command(
        f"DELETE FROM {raw}.stock_aggs WHERE sym = '{row[0]}' AND ev = '{row[1]}' AND s = {row[2]} "
        "AND ingested_at < '2100-01-01'"
    )
    code, doc = _verify(loaded, "--topic", topic)
    assert (
        sum(p["superseded"] for p in doc["partitions"]) == 1
        and sum(p["missing"] for p in doc["partitions"]) == 0
    )
    assert code == 0, doc  # the replayed bar was loaded after the last build: not yet due in the mart


def test_bad_options_are_one_line_errors(loaded: Space) -> None:
    for args, needle in (
        (["--topic", "nope"], "--topic"),
        (["--since", ""], "--since"),
        (["--topic", ""], "--topic"),
    ):
        out = _cli(loaded, "verify", *args)
        assert out.returncode == 2 and needle in out.stderr, (args, out.stderr)


def test_since_limits_the_offsets_checked(loaded: Space) -> None:
    """--since starts each partition at its first record at or after that time (Kafka's offsets for times)."""
    code, later = _verify(loaded, "--since", "2100-01-01T00:00:00Z")
    assert code == 0 and all(p["start"] == p["end"] and p["present"] == 0 for p in later["partitions"])
    code, week = _verify(loaded, "--since", "7d")
    _, whole = _verify(loaded)
    assert code == 0 and [p["start"] for p in week["partitions"]] == [p["start"] for p in whole["partitions"]]


def test_kafka_engine_mode_counts_kafka_errors_as_dead_letters(loaded: Space) -> None:
    """In kafka-engine mode the dead-letter path is rtfin_raw.kafka_errors (the DLQ topic is not read): the
    bad records are missing until their positions are there. The engine's group is pointed at the
    loader's commits (chDB has no Kafka engine)."""
    from rtfin_cli.warehouse import kafka_engine

    env = {**loaded.env, "RTFIN__CLICKHOUSE__INGEST": "kafka-engine",
           "RTFIN__CLICKHOUSE__KAFKA_ENGINE_GROUP": loaded.settings.clickhouse.loader_group}  # fmt: skip
    engine = Space(loaded.settings, env, loaded.topics, loaded.cwd)
    code, doc = _verify(engine)
    bad = [(p["topic"], p["partition"], r) for p in doc["partitions"] for r in p["missing_ranges"]]
    assert code == 8 and sum(b - a + 1 for _, _, (a, b) in bad) == sum(len(v) for v in BAD_RECORDS.values())
    assert all(p["dead_lettered"] == 0 for p in doc["partitions"])
    client, raw = loaded.client(), loaded.settings.clickhouse.raw_database
    client.command(kafka_engine.render(loaded.settings)[0])  # the kafka_errors table
    rows = [[t, p, o, "bad", "{}"] for t, p, (a, b) in bad for o in range(a, b + 1)]
    client.insert(
        f"{raw}.kafka_errors", rows, column_names=["topic", "partition", "offset", "error", "raw_message"]
    )
    try:
        code, doc = _verify(engine)
        assert code == 0 and sum(p["dead_lettered"] for p in doc["partitions"]) == len(rows), doc
    finally:
        client.command(f"DROP TABLE {raw}.kafka_errors")


def test_transaction_markers_and_aborted_records_are_not_missing(loaded: Space) -> None:
    """The sentiment topic is written in Kafka transactions (one per micro-batch): each commit leaves a
    marker at an offset no record holds, an abort leaves its records unread. Neither is missing."""
    from confluent_kafka import Producer

    topic = loaded.topics["news_sentiment"]
    p = Producer(
        {"bootstrap.servers": loaded.settings.kafka.bootstrap, "transactional.id": f"{topic}-verify"}
    )
    p.init_transactions(60)

    def batch(n: int, commit: bool) -> None:
        p.begin_transaction()
        for i in range(4):
            doc = {"id": f"txn-{n}-{i}", "published_utc": "2024-06-03T12:00:00Z", "tickers": ["T001"],
                   "label": "neutral", "score": 0.5, "sentiment": 0.0, "scored_at": "2024-06-03T12:00:05Z"}  # fmt: skip
            p.produce(topic, key=doc["id"].encode(), value=json.dumps(doc).encode())
        if commit:
            p.commit_transaction(60)
        else:
            assert p.flush(30) == 0  # on the broker, then aborted (an abort purges what was not sent)
            p.abort_transaction(60)

    for n, commit in enumerate((True, False, True, True)):
        batch(n, commit)
    assert _cli(loaded, "transform", "load", "--once", "--timeout", "60").returncode == 0
    code, doc = _verify(loaded, "--topic", topic)
    parts = doc["partitions"]
    assert code == 0, doc
    # at least the aborted batch's 4 records and its marker: read_committed never returns them
    assert sum(p["no_record"] for p in parts) >= 4 + 1
    assert sum(p["missing"] for p in parts) == 0
