"""Reporting tables with the contract columns (issue brief), filled from the market replay dataset.

Stand-in for #7's dbt reporting models: the same names and columns, rows derived from the replay's
articles (with their labels as sentiment) and one trading day of minute bars, shifted to "now".
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

TICKERS = 30  # keep the test data small: the first N tickers of the replay universe
DDL = {
    "rpt_trending_tickers_7d": "rank UInt32, ticker String, article_count UInt64, "
    "avg_sentiment Nullable(Float64), share_positive Nullable(Float64), share_negative Nullable(Float64), "
    "last_article_at DateTime64(3, 'UTC')",
    "rpt_intraday_price": "ticker String, bar_start DateTime64(3, 'UTC'), bar_end DateTime64(3, 'UTC'), "
    "open Float64, high Float64, low Float64, close Float64, vwap Float64",
    "rpt_intraday_volume": "ticker String, bar_start DateTime64(3, 'UTC'), bar_end DateTime64(3, 'UTC'), "
    "volume Float64, accumulated_volume Float64",
    "rpt_latest_news": "article_id String, ticker String, published_at DateTime64(3, 'UTC'), title String, "
    "article_url String, publisher String, tickers String, label Nullable(String), score Nullable(Float64), "
    "sentiment Nullable(Float64), scored_at Nullable(DateTime64(3, 'UTC'))",
}
SENTIMENT = {"positive": 0.8, "negative": -0.7, "neutral": 0.0}


def _dt(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


def load(client: Any, database: str, now_ms: int | None = None) -> dict[str, int]:
    """(Re)create the four reporting tables in ``database`` and fill them; returns row counts."""
    from rtfin_cli.local.market import dataset

    now_ms = now_ms or int(time.time() * 1000)
    universe = [t.symbol for t in dataset.tickers()[:TICKERS]]
    client.command(f"CREATE DATABASE IF NOT EXISTS {database}")
    for table, cols in DDL.items():
        client.command(f"DROP TABLE IF EXISTS {database}.{table}")
        client.command(f"CREATE TABLE {database}.{table} ({cols}) ENGINE = MergeTree ORDER BY tuple()")

    # news: the newest 300 replay articles that mention the universe, re-timed to the last 3 days
    articles = [a for a in dataset.news() if set(a.get("tickers") or []) & set(universe)][-300:]
    first, last = (
        dataset.parse_ms(articles[0]["published_utc"]),
        dataset.parse_ms(articles[-1]["published_utc"]),
    )
    span = max(1, last - first)
    news_rows = []
    for a in articles:
        at = now_ms - 3 * 86_400_000 + (dataset.parse_ms(a["published_utc"]) - first) * 3 * 86_400_000 // span
        label = str(a["label"])
        tickers = [t for t in a["tickers"] if t in universe]
        for t in tickers:
            row = [str(a["id"]), t, _dt(at), a["title"], a["article_url"], a["publisher"]["name"]]
            news_rows.append([*row, ",".join(a["tickers"]), label, 0.9, SENTIMENT[label], _dt(at + 2000)])
    client.insert(f"{database}.rpt_latest_news", news_rows, column_names=list(_names("rpt_latest_news")))

    stats: dict[str, list[Any]] = {}
    for row in news_rows:
        s = stats.setdefault(row[1], [0, 0.0, 0, 0, row[2]])
        s[0] += 1
        s[1] += row[9]
        s[2] += row[7] == "positive"
        s[3] += row[7] == "negative"
        s[4] = max(s[4], row[2])
    ranked = sorted(stats.items(), key=lambda kv: (-kv[1][0], kv[0]))[:50]
    trending = [
        [i + 1, t, s[0], s[1] / s[0], s[2] / s[0], s[3] / s[0], s[4]] for i, (t, s) in enumerate(ranked)
    ]
    client.insert(
        f"{database}.rpt_trending_tickers_7d", trending, column_names=list(_names("rpt_trending_tickers_7d"))
    )

    # bars: the first 120 minutes of the replay's first trading day, ending now
    minutes = dataset.day_bars(0)[:120]
    shift = now_ms - minutes[-1][0]["e"]
    price, volume = [], []
    for minute in minutes:
        for bar in minute:
            if bar["sym"] in universe:
                s, e = _dt(bar["s"] + shift), _dt(bar["e"] + shift)
                price.append([bar["sym"], s, e, bar["o"], bar["h"], bar["l"], bar["c"], bar["vw"]])
                volume.append([bar["sym"], s, e, float(bar["v"]), float(bar["av"])])
    client.insert(f"{database}.rpt_intraday_price", price, column_names=list(_names("rpt_intraday_price")))
    client.insert(f"{database}.rpt_intraday_volume", volume, column_names=list(_names("rpt_intraday_volume")))
    return {"rpt_latest_news": len(news_rows), "rpt_trending_tickers_7d": len(trending),
            "rpt_intraday_price": len(price), "rpt_intraday_volume": len(volume)}  # fmt: skip


def _names(table: str) -> list[str]:
    return [part.strip().split(" ", 1)[0] for part in DDL[table].split(", ") if " " in part.strip()]
