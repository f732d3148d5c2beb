"""`rtfin verify`'s pure parts: topic selection, range folding, Kafka read passes, identities, the screen."""

from __future__ import annotations

import json

import pytest

from rtfin_cli.errors import UsageError
from rtfin_cli.settings import load_settings
from rtfin_cli.warehouse import positions, verify, verify_sql

pytestmark = pytest.mark.unit


def _settings():  # type: ignore[no-untyped-def]
    return load_settings(config=None, profile="local", environ={}).settings


def test_topic_selection_names_the_unknown_and_refuses_blank() -> None:
    s = _settings()
    by_table = s.kafka.topics.by_table()
    assert verify.selected_tables(s, None) == by_table
    assert verify.selected_tables(s, [by_table["news"]]) == {"news": by_table["news"]}
    for bad in (["nope"], [""], []):
        with pytest.raises(UsageError) as exc:
            verify.selected_tables(s, bad)
        assert "--topic" in exc.value.message and by_table["stock_aggs"] in (exc.value.hint or "")


def test_offsets_fold_into_ranges() -> None:
    assert verify._ranges([]) == []
    assert verify._ranges([3, 6, 7, 10, 11, 12]) == [[3, 3], [6, 7], [10, 12]]


def test_close_ranges_are_read_in_one_pass() -> None:
    spans = [(10, 10), (20, 25), (20 + positions.READ_THROUGH + 100, 20 + positions.READ_THROUGH + 100)]
    passes = list(positions._passes(spans))
    assert [(a, b) for a, b, _ in passes] == [(10, 25), (620, 620)]
    inside = passes[0][2]
    assert inside(10) and inside(22) and not inside(15) and not inside(26)


def test_identity_matches_the_sql_rendering() -> None:
    bar = json.dumps({"sym": "AAPL", "ev": "AM", "s": 1717416000000}).encode()
    assert verify._identity("stock_aggs", bar) == "AAPL|AM|1717416000000"
    assert verify._identity("news", b'{"id": "a1"}') == "a1"
    assert verify._identity("news", b"{not json") is None and verify._identity("news", b"{}") is None
    assert verify_sql.IDENTITY_SQL["stock_aggs"] == "concat(sym, '|', ev, '|', toString(s))"


def test_range_condition_is_built_from_integers_only() -> None:
    cond = verify_sql.in_range({1: (5, 9), 0: (0, 3)})
    assert "_partition IN (0, 1)" in cond and "map(0, 0, 1, 5)" in cond and "map(0, 3, 1, 9)" in cond
    assert "{topic:String}" in cond
    with pytest.raises((TypeError, ValueError)):
        verify_sql.in_range({0: ("0; DROP TABLE x", 1)})  # type: ignore[dict-item]


def test_retained_range_ends_at_the_commit() -> None:
    assert positions.Retained(low=5, high=50, committed=40, start=5).end == 40
    assert (
        positions.Retained(low=5, high=50, committed=None, start=5).end == 5
    )  # never committed: nothing due
    assert positions.Retained(low=30, high=50, committed=20, start=30).end == 30  # committed below retention


def test_records_retention_deleted_before_the_group_read_them_are_expired() -> None:
    lost = verify._result("t", "news", 0, positions.Retained(low=100, high=150, committed=40, start=100))
    assert lost.expired == 60 and not lost.ok and lost.end == 100
    fine = verify._result("t", "news", 0, positions.Retained(low=100, high=150, committed=120, start=100))
    assert fine.expired == 0 and fine.ok


def test_report_is_not_ok_with_any_missing_duplicate_unexplained_or_mart_gap() -> None:
    def part(**kw: int) -> verify.PartitionResult:
        return verify.PartitionResult("t", "news", 0, 0, 10, 10, 10, **kw)

    assert verify.VerifyReport("loader", None, [part()], []).ok
    for kw in ({"missing": 1}, {"duplicates": 1}, {"unexplained": 1}, {"expired": 1}):
        assert not verify.VerifyReport("loader", None, [part(**kw)], []).ok
    mart = verify.MartResult("news", "fct_news_sentiment", "2026-01-01", absent=2, sample=["a"])
    doc = verify.VerifyReport("loader", None, [part()], [mart]).as_dict()
    assert doc["ok"] is False and doc["marts"][0]["ok"] is False and doc["partitions"][0]["ok"] is True


def test_screen_names_the_ranges(capsys: pytest.CaptureFixture[str]) -> None:
    from rtfin_cli.cli import verify as cmd

    p = verify.PartitionResult("rtfin.stocks.aggs", "stock_aggs", 0, 0, 100, 100, 100, present=90, missing=10)
    p.missing_ranges = [[3, 3], [6, 7], [10, 16]]
    doc = verify.VerifyReport("loader", None, [p], []).as_dict()
    cmd._render(doc)
    out = capsys.readouterr().out
    assert "10: 3, 6-7, 10-16" in out and "NOT verified" in out
