"""`rtfin sentiment eval --against-insights [--since T]` on a known raw table in the real local ClickHouse:
the numbers equal scikit-learn's on the same pairs; replayed rows, unscored articles, other provider labels
and old articles are handled as documented; bad input and an unreachable server are one-line errors."""

from __future__ import annotations

import json
import os
import random
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import run_cli

LABELS = ["positive", "negative", "neutral"]
NEWS_COLS = ["id", "published_utc", "title", "tickers", "insights", "ingested_at"]
SENT_COLS = ["id", "published_utc", "tickers", "label", "score", "sentiment", "scored_at"]


@pytest.fixture(scope="module")
def table(clickhouse_settings: Any, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A raw database with seeded articles; returns the CLI env and the (provider, model) pairs expected."""
    from rtfin_cli.settings import RtfinSettings
    from rtfin_cli.warehouse import ddl
    from rtfin_cli.warehouse.client import get_client

    ch = clickhouse_settings.model_copy(update={"raw_database": f"raw_ins_{uuid.uuid4().hex[:8]}"})
    client = get_client(RtfinSettings(clickhouse=ch))
    ddl.apply(ch, client)
    rng, now = random.Random(5), datetime.now(UTC)
    news, scores, recent, old = [], [], [], []
    for i in range(300):
        aid, tickers = f"a{i}", [f"T{i % 40}", f"T{(i + 7) % 40}"][: 1 + i % 2]
        published = now - timedelta(days=rng.choice((1, 2, 3, 30)))
        insights = [(t, rng.choice(LABELS + ["mixed"] * (i % 50 == 0)), f"why {aid} {t}") for t in tickers]
        news.append([aid, published, f"title {i}", tickers, insights, published])
        news.append(
            [aid, published, f"title {i}", tickers, insights, published - timedelta(seconds=1)]
        )  # replay
        if i % 10 == 9:
            continue  # not scored yet
        label = rng.choice(LABELS)
        scores.append([aid, published, tickers, rng.choice(LABELS), 0.5, 0.0, now - timedelta(hours=1)])
        scores.append([aid, published, tickers, label, 0.9, 0.0, now])  # the newest score wins
        pairs = [(lab, label) for _, lab, _ in insights if lab in LABELS]
        (old if published < now - timedelta(days=7) else recent).extend(pairs)
    client.insert(f"{ch.raw_database}.news", news, column_names=NEWS_COLS)
    client.insert(f"{ch.raw_database}.news_sentiment", scores, column_names=SENT_COLS)
    env = {k: v for k, v in os.environ.items() if not k.startswith("RTFIN")}
    env.update(
        RTFIN__CLICKHOUSE__HOST=ch.host, RTFIN__CLICKHOUSE__PORT=str(ch.port), RTFIN__CLICKHOUSE__USER=ch.user,
        RTFIN__CLICKHOUSE__PASSWORD=ch.password.get_secret_value(), RTFIN__CLICKHOUSE__RAW_DATABASE=ch.raw_database,
        RTFIN__LOCAL__DATA_DIR=str(tmp_path_factory.mktemp("ins") / ".rtfin"),
    )  # fmt: skip
    return {"env": env, "recent": recent, "all": recent + old, "insights": sum(len(r[4]) for r in news) // 2}


def _eval(env: dict[str, str], *args: str) -> Any:
    out = run_cli(
        "sentiment",
        "eval",
        "--against-insights",
        *args,
        env=env,
        cwd=Path(env["RTFIN__LOCAL__DATA_DIR"]).parent,
    )
    return out


def _expected(pairs: list[tuple[str, str]]) -> dict[str, Any]:
    from sklearn.metrics import accuracy_score, confusion_matrix, f1_score

    gold, pred = [g for g, _ in pairs], [p for _, p in pairs]
    matrix = confusion_matrix(gold, pred, labels=LABELS).tolist()
    return {
        "n": len(pairs),
        "accuracy": accuracy_score(gold, pred),
        "macro_f1": f1_score(gold, pred, labels=LABELS, average="macro"),
        "confusion": {g: dict(zip(LABELS, row, strict=True)) for g, row in zip(LABELS, matrix, strict=True)},
    }


@pytest.mark.parametrize(("since", "which"), [((), "all"), (("--since", "7d"), "recent")])
def test_agreement_equals_sklearn_on_the_same_pairs(
    table: dict[str, Any], since: tuple[str, ...], which: str
) -> None:
    out = _eval(table["env"], *since, "--json")
    assert out.returncode == 0, out.stderr
    got = json.loads(out.stdout)
    want = _expected(table[which])
    assert got["n"] == got["compared"] == want["n"] > 100
    assert got["accuracy"] == pytest.approx(want["accuracy"]) and got["macro_f1"] == pytest.approx(
        want["macro_f1"]
    )
    assert got["confusion"] == want["confusion"]
    if which == "all":
        assert got["insights"] == table["insights"] and got["unscored"] > 0 and got["other_labels"] > 0
        assert got["insights"] == got["compared"] + got["unscored"] + got["other_labels"]


def test_the_table_is_printed_for_a_person(table: dict[str, Any]) -> None:
    out = _eval(table["env"])
    assert out.returncode == 0, out.stderr
    assert "agreement" in out.stdout and "macro-F1" in out.stdout and "provider" in out.stdout


@pytest.mark.parametrize(
    ("args", "code", "words"),
    [
        (("--since", "last tuesday"), 2, "--since: cannot read 'last tuesday'"),
        (("--since", ""), 2, "--since"),
        (("--since", "2999-01-01"), 6, "no article"),
        (("--model", "x"), 2, "--model cannot be used"),
    ],
)
def test_bad_input_is_one_line(table: dict[str, Any], args: tuple[str, ...], code: int, words: str) -> None:
    out = _eval(table["env"], *args)
    assert out.returncode == code and words in out.stderr + out.stdout, out.stderr


def test_unreachable_clickhouse_is_one_line_naming_it(table: dict[str, Any]) -> None:
    from rtfin_cli.local.supervisor import free_port

    port = free_port()
    out = _eval({**table["env"], "RTFIN__CLICKHOUSE__PORT": str(port)})
    assert out.returncode == 4 and f":{port} is unreachable" in out.stderr, out.stderr


def test_no_raw_tables_says_how_to_create_them(table: dict[str, Any]) -> None:
    out = _eval({**table["env"], "RTFIN__CLICKHOUSE__RAW_DATABASE": "raw_never_created"})
    assert out.returncode == 6 and "has no raw news tables" in out.stderr and "transform run" in out.stderr, (
        out.stderr
    )


def test_since_needs_against_insights_and_a_file_excludes_it(table: dict[str, Any], tmp_path: Path) -> None:
    env = table["env"]
    alone = run_cli("sentiment", "eval", "--since", "7d", env=env, cwd=tmp_path)
    assert alone.returncode == 2 and "--since only applies with --against-insights" in alone.stderr, (
        alone.stderr
    )
    both = _eval(env, str(tmp_path / "labels.tsv"))
    assert both.returncode == 2 and "FILE cannot be used" in both.stderr, both.stderr
    neither = run_cli("sentiment", "eval", env=env, cwd=tmp_path)
    assert neither.returncode == 2 and "eval needs a labelled FILE or --against-insights" in neither.stderr
