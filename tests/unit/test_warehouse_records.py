from __future__ import annotations

import json

import pytest

from rtfin_cli.warehouse.records import BadRecord, columns, to_row

NEWS = {
    "id": "a1", "published_utc": "2024-06-03T12:00:00Z", "title": "t", "description": None,
    "article_url": "u", "author": "x", "publisher": {"name": "Wire", "homepage_url": "h"},
    "tickers": ["AAPL", "MSFT"], "keywords": ["k"], "image_url": "", "amp_url": "",
    "insights": [{"ticker": "MSFT", "sentiment": "negative", "sentiment_reasoning": "lost a customer"},
                 {"ticker": "AAPL", "sentiment": "positive", "sentiment_reasoning": None}],
    "ingested_at": "2024-06-03T12:00:01.250Z",
}  # fmt: skip
BAR = {
    "ev": "AM", "sym": "AAPL", "s": 1717416000000, "e": 1717416060000, "o": 1, "h": 2, "l": 0.5, "c": 1.5,
    "v": 100, "vw": 1.2, "av": 1000, "a": 1.1, "z": 10, "otc": False, "ingested_at": 1717416061000,
}  # fmt: skip
SENT = {
    "id": "a1", "published_utc": "2024-06-03T12:00:00Z", "title": "t", "tickers": ["AAPL"],
    "label": "positive", "score": 0.9, "sentiment": 0.8, "model": "m", "scored_at": "2024-06-03T12:00:05Z",
}  # fmt: skip


def test_news_row_in_column_order() -> None:
    row = to_row("news", json.dumps(NEWS).encode(), partition=2, offset=7)
    doc = dict(zip(columns("news"), row, strict=True))
    assert doc["id"] == "a1" and doc["description"] == ""
    assert doc["published_utc"] == 1717416000000 and doc["ingested_at"] == 1717416001250
    assert doc["publisher"] == ("Wire", "h", "", "")
    assert doc["tickers"] == ["AAPL", "MSFT"]
    assert doc["insights"] == [("MSFT", "negative", "lost a customer"), ("AAPL", "positive", "")]
    assert to_row("news", {**NEWS, "insights": None})[columns("news").index("insights")] == []
    assert (doc["_topic"], doc["_partition"], doc["_offset"]) == ("", 2, 7)


def test_bar_and_sentiment_rows() -> None:
    bar = dict(zip(columns("stock_aggs"), to_row("stock_aggs", BAR), strict=True))
    assert bar["s"] == 1717416000000 and bar["v"] == 100.0 and bar["otc"] is False
    assert bar["ingested_at"] == 1717416061000  # epoch ms accepted too
    sent = dict(zip(columns("news_sentiment"), to_row("news_sentiment", SENT), strict=True))
    assert sent["label"] == "positive" and sent["scored_at"] == 1717416005000


@pytest.mark.parametrize(
    ("table", "value", "field"),
    [
        ("news", b"{not json", "not JSON"),
        ("news", b"[1, 2]", "not a JSON object"),
        ("news", json.dumps({**NEWS, "id": ""}).encode(), "'id'"),
        ("news", json.dumps({**NEWS, "published_utc": "yesterday"}).encode(), "'published_utc'"),
        ("news", json.dumps({**NEWS, "tickers": "AAPL"}).encode(), "'tickers'"),
        ("news", json.dumps({**NEWS, "insights": {"ticker": "AAPL"}}).encode(), "'insights'"),
        ("news", json.dumps({**NEWS, "insights": [{"sentiment": 1}]}).encode(), "'insights'"),
        ("stock_aggs", json.dumps({**BAR, "ev": "T"}).encode(), "'ev'"),
        ("stock_aggs", json.dumps({**BAR, "o": "1.0"}).encode(), "'o'"),
        ("stock_aggs", json.dumps({**BAR, "s": 1.5}).encode(), "'s'"),
        ("news_sentiment", json.dumps({**SENT, "label": "great"}).encode(), "'label'"),
        ("news_sentiment", json.dumps({**SENT, "score": 1.5}).encode(), "'score'"),
        ("news_sentiment", json.dumps({**SENT, "sentiment": float("nan")}).encode(), "'sentiment'"),
    ],
)
def test_bad_records_name_the_field(table: str, value: bytes, field: str) -> None:
    with pytest.raises(BadRecord) as err:
        to_row(table, value)
    assert field in str(err.value)
