"""The dashboard's data: market-replay records landed in the raw tables (#7's DDL, the loader's row
conversion), then the real dbt project (`rtfin transform run`) builds the reporting models.

Records follow the Kafka contracts (DESIGN.md): the replay's articles re-timed to the last 3 days,
scored by the offline default model on the text the Spark job scores (title. description), and two hours
of minute bars ending now.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from typing import Any

TICKERS = 30  # keep the test data small: the first N tickers of the replay universe
ARTICLES = 300
MODEL = "rtfin-minilm-fin"
MINUTES = 120


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _scored(articles: list[dict[str, Any]]) -> list[Any]:
    """The offline default model's predictions for each article, on the Spark job's text."""
    from rtfin_cli.sentiment.model import score_texts

    texts = [". ".join(x for x in (a["title"], (a.get("description") or "").strip()) if x) for a in articles]
    return score_texts(texts, MODEL)


def records(now_ms: int | None = None) -> dict[str, list[dict[str, Any]]]:
    """Raw-topic records (news, news_sentiment, stock_aggs) from the replay dataset."""
    from rtfin_cli.local.market import dataset

    now_ms = now_ms or int(time.time() * 1000)
    universe = {t.symbol for t in dataset.tickers()[:TICKERS]}
    articles = [a for a in dataset.news() if set(a.get("tickers") or []) & universe][-ARTICLES:]
    first, last = (
        dataset.parse_ms(articles[0]["published_utc"]),
        dataset.parse_ms(articles[-1]["published_utc"]),
    )
    span, window = max(1, last - first), 3 * 86_400_000
    out: dict[str, list[dict[str, Any]]] = {"news": [], "news_sentiment": [], "stock_aggs": []}
    for a, p in zip(articles, _scored(articles), strict=True):
        at = now_ms - window + (dataset.parse_ms(a["published_utc"]) - first) * (window - 60_000) // span
        news = {k: v for k, v in a.items() if k != "label"}
        out["news"].append({**news, "published_utc": _iso(at), "ingested_at": _iso(at + 1000)})
        out["news_sentiment"].append({
            "id": a["id"], "published_utc": _iso(at), "title": a["title"], "tickers": a["tickers"],
            "label": p.label, "score": p.score, "sentiment": p.sentiment, "model": MODEL,
            "scored_at": _iso(at + 2000),
        })  # fmt: skip
    minutes = dataset.day_bars(0)[:MINUTES]
    shift = now_ms - minutes[-1][0]["e"]
    for minute in minutes:
        for bar in minute:
            if bar["sym"] in universe:
                s, e = bar["s"] + shift, bar["e"] + shift
                out["stock_aggs"].append({**bar, "s": s, "e": e, "otc": False, "ingested_at": _iso(e + 500)})
    return out


def land(settings: Any) -> dict[str, int]:
    """Apply the raw DDL and insert the records the way the loader does; returns rows per raw table."""
    from rtfin_cli.warehouse import ddl
    from rtfin_cli.warehouse.client import get_client
    from rtfin_cli.warehouse.records import columns, to_row

    client = get_client(settings)
    try:
        ddl.apply(settings.clickhouse, client)
        raw = settings.clickhouse.raw_database
        counts = {}
        for table, docs in records().items():
            rows = [to_row(table, json.dumps(doc), 0, i) for i, doc in enumerate(docs)]
            client.insert(f"{raw}.{table}", rows, column_names=columns(table))
            counts[table] = len(rows)
        return counts
    finally:
        client.close()
