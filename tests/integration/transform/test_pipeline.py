"""Topics with replayed data → loader → `rtfin transform run` → reporting counts computed from the input;
producing the same data again changes no count in any mart."""

from __future__ import annotations

import json

import pytest

from tests.conftest import run_cli
from tests.integration.transform.conftest import Space
from tests.integration.transform.gen import BAD_RECORDS, generate, produce

MARTS = [
    "dim_ticker",
    "fct_news_sentiment",
    "fct_stock_bars FINAL",
    "rpt_trending_tickers_7d",
    "rpt_intraday_price",
    "rpt_intraday_volume",
    "rpt_latest_news",
]


def _cli_json(space: Space, *args: str, timeout: float = 600) -> dict:  # type: ignore[type-arg]
    out = run_cli(*args, "--json", env=space.env, cwd=space.cwd, timeout=timeout)
    assert out.returncode == 0, out.stderr[-2000:] + out.stdout[-2000:]
    return json.loads(out.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def _mart_counts(space: Space) -> dict[str, int]:
    db = space.settings.clickhouse.database
    return {m: space.count(f"SELECT count() FROM {db}.{m}") for m in MARTS}


@pytest.mark.slow
def test_replay_reaches_reporting_exactly_once(space: Space) -> None:
    data = generate(seed=11, articles=400, tickers=40, minutes=20, second_bars=1)
    raw = space.settings.clickhouse.raw_database
    db = space.settings.clickhouse.database
    assert run_cli("topics", "create", env=space.env, cwd=space.cwd).returncode == 0
    produce(space.settings.kafka.bootstrap, space.topics, data.messages())
    produce(space.settings.kafka.bootstrap, space.topics, BAD_RECORDS)

    # The raw tables first (DDL), then the loader drains the topics.
    from rtfin_cli.warehouse.ddl import migrations

    first = _cli_json(space, "transform", "ddl")
    assert len(first["applied"]) == len(migrations())
    stats = _cli_json(space, "transform", "load", "--once", "--timeout", "240")
    assert stats["inserted"] == {
        "news": 400,
        "stock_aggs": len(data.bars),
        "news_sentiment": len(data.sentiment),
    }
    assert stats["dead_lettered"] == sum(len(v) for v in BAD_RECORDS.values())
    # Every row names the record it came from.
    topics = space.client().query(
        f"SELECT DISTINCT _topic, min(_offset) >= 0 FROM {raw}.news GROUP BY _topic"
    )
    assert topics.result_rows == [(space.topics["news_raw"], True)]

    run = _cli_json(space, "transform", "run")
    assert run["success"], run["build"]
    assert run["ddl"]["applied"] == [] and len(run["ddl"]["already"]) == len(migrations())
    counts = run["build"]["counts"]
    assert counts.get("model:success") == 12 and counts.get("test:pass", 0) >= 30, counts

    expected = {
        "dim_ticker": len(data.tickers()),
        "fct_news_sentiment": data.fct_news_rows(),
        "fct_stock_bars FINAL": data.all_bars(),
        "rpt_trending_tickers_7d": len(data.trending()),
        "rpt_intraday_price": data.minute_bars(),
        "rpt_intraday_volume": data.minute_bars(),
        "rpt_latest_news": data.latest_news_rows(),
    }
    assert _mart_counts(space) == expected
    trending = (
        space.client()
        .query(f"SELECT ticker, article_count, avg_sentiment FROM {db}.rpt_trending_tickers_7d ORDER BY rank")
        .result_rows
    )
    want = data.trending()
    assert [(t, n) for t, n, _ in trending] == [(t, n) for t, n, _ in want]
    for (_, _, got), (_, _, exp) in zip(trending, want, strict=True):
        assert (got is None and exp is None) or abs(got - exp) < 1e-9
    # The provider's insights, per article x ticker, where the article has one for that ticker.
    provider = space.client().query(
        f"SELECT article_id, ticker, provider_label, provider_reasoning FROM {db}.fct_news_sentiment "
        "WHERE provider_label IS NOT NULL"
    )
    assert {(a, t): (lab, why) for a, t, lab, why in provider.result_rows} == data.provider_labels()

    # Replay everything: raw tables receive every record again, no mart count changes.
    raw_before = space.count(f"SELECT count() FROM {raw}.stock_aggs")
    produce(space.settings.kafka.bootstrap, space.topics, data.messages())
    again = _cli_json(space, "transform", "load", "--once", "--timeout", "240")
    assert again["inserted"]["stock_aggs"] == len(data.bars) and again["dead_lettered"] == 0
    assert space.count(f"SELECT count() FROM {raw}.stock_aggs") >= raw_before  # landed (merges may collapse)
    rerun = _cli_json(space, "transform", "run")
    assert rerun["success"], rerun["build"]
    assert _mart_counts(space) == expected


def test_dead_letters_carry_headers(space: Space) -> None:
    from confluent_kafka import Consumer

    from rtfin_cli.warehouse import ddl
    from rtfin_cli.warehouse.loader import Loader

    assert run_cli("topics", "create", env=space.env, cwd=space.cwd).returncode == 0
    ddl.apply(space.settings.clickhouse, space.client())
    data = generate(seed=3, articles=20, tickers=5, minutes=2, second_bars=0)
    produce(space.settings.kafka.bootstrap, space.topics, {**data.messages()})
    produce(space.settings.kafka.bootstrap, space.topics, BAD_RECORDS)
    stats = Loader(space.settings, batch_s=0.2).run(once=True, timeout_s=120)
    assert stats.stopped_by == "drained"
    assert stats.inserted == {"news": 20, "stock_aggs": len(data.bars), "news_sentiment": len(data.sentiment)}
    raw = space.settings.clickhouse.raw_database
    assert space.count(f"SELECT count() FROM {raw}.news") == 20

    c = Consumer({"bootstrap.servers": space.settings.kafka.bootstrap, "group.id": "t-dlq",
                  "auto.offset.reset": "earliest"})  # fmt: skip
    c.subscribe([space.topics["dlq"]])
    got = []
    try:
        for _ in range(60):
            msg = c.poll(1.0)
            if msg is not None and msg.error() is None:
                got.append(msg)
            if len(got) == 4:
                break
    finally:
        c.close()
    assert len(got) == 4
    sent = {v for vs in BAD_RECORDS.values() for _, v in vs}
    assert {m.value() for m in got} == sent  # the raw payload as received
    for m in got:
        headers = dict(m.headers() or [])
        assert headers["rtfin-stage"] == b"loader"
        assert headers["rtfin-source"].decode() in space.topics.values()
        assert headers["rtfin-error"]


def test_selected_build_runs_only_tests_of_selected_models(space: Space) -> None:
    """`--select +dim_ticker` on a fresh database: the marts build, and the replay test (which also reads
    the reporting views, not selected and not built) is left out rather than failing."""
    run = _cli_json(space, "transform", "run", "--select", "+dim_ticker")
    assert run["success"], run["build"]
    names = {n["name"]: n["status"] for n in run["build"]["nodes"]}
    assert names["dim_ticker"] == "success" and names["fct_stock_bars"] == "success"
    assert "assert_no_duplicate_survives_replay" not in names
    assert "rpt_intraday_price" not in names
