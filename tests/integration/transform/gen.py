"""A seeded generator of contract-shaped records (DESIGN.md) and the counts the marts must show.

Used by the transform integration tests and bench/bench_transform.py. Times are recent (within
the last few days) so the 7-day trending window covers every article.
"""

from __future__ import annotations

import json
import random
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

LABELS = ("positive", "negative", "neutral")


def iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass
class Dataset:
    news: list[dict[str, Any]] = field(default_factory=list)
    bars: list[dict[str, Any]] = field(default_factory=list)
    sentiment: list[dict[str, Any]] = field(default_factory=list)

    # -- expected results, computed from the input ------------------------------------------------
    def article_tickers(self) -> dict[str, list[str]]:
        return {a["id"]: sorted({t for t in a["tickers"] if t}) for a in self.news}

    def fct_news_rows(self) -> int:
        return sum(len(t) for t in self.article_tickers().values())

    def minute_bars(self) -> int:
        return len({(b["sym"], b["s"]) for b in self.bars if b["ev"] == "AM"})

    def all_bars(self) -> int:
        return len({(b["sym"], b["ev"], b["s"]) for b in self.bars})

    def tickers(self) -> set[str]:
        out = {t for ts in self.article_tickers().values() for t in ts}
        return out | {b["sym"] for b in self.bars}

    def trending(self, top: int = 50) -> list[tuple[str, int, float | None]]:
        """[(ticker, distinct articles, avg sentiment of scored ones)] ranked as rpt_trending_tickers_7d."""
        scores = {s["id"]: s["sentiment"] for s in self.sentiment}
        arts: dict[str, set[str]] = defaultdict(set)
        for aid, ts in self.article_tickers().items():
            for t in ts:
                arts[t].add(aid)
        rows = []
        for t, ids in arts.items():
            vals = [scores[i] for i in ids if i in scores]
            rows.append((t, len(ids), sum(vals) / len(vals) if vals else None))
        rows.sort(key=lambda r: (-r[1], r[0]))
        return rows[:top]

    def latest_news_rows(self, n: int = 500) -> int:
        newest = sorted(self.news, key=lambda a: (a["published_utc"], a["id"]), reverse=True)
        tickers = self.article_tickers()
        with_tickers = [a for a in newest if tickers[a["id"]]]
        return sum(len(tickers[a["id"]]) for a in with_tickers[:n])

    def provider_labels(self) -> dict[tuple[str, str], tuple[str, str]]:
        """(article id, ticker) -> the provider's (sentiment, reasoning), where it has an insight."""
        return {(a["id"], i["ticker"]): (i["sentiment"], i["sentiment_reasoning"]) for a in self.news
                for i in a["insights"]}  # fmt: skip

    def messages(self) -> dict[str, list[tuple[str, bytes]]]:
        """{topic role: [(key, value)]} ready to produce."""
        enc = lambda d: json.dumps(d).encode()  # noqa: E731
        return {
            "news_raw": [(a["id"], enc(a)) for a in self.news],
            "stocks_aggs": [(b["sym"], enc(b)) for b in self.bars],
            "news_sentiment": [(s["id"], enc(s)) for s in self.sentiment],
        }


def _insights(seed: int, aid: str, tickers: list[str]) -> list[dict[str, Any]]:
    """Massive-shaped insights for some of an article's tickers (their own random stream)."""
    rng = random.Random(f"{seed}:{aid}:insights")
    return [{"ticker": t, "sentiment": rng.choice(LABELS), "sentiment_reasoning": f"reason {aid} {t}"}
            for t in tickers if rng.random() < 0.7]  # fmt: skip


def generate(
    seed: int = 7,
    articles: int = 600,
    tickers: int = 60,
    minutes: int = 30,
    second_bars: int = 2,
    scored: float = 0.8,
    now: datetime | None = None,
) -> Dataset:
    """A dataset; the same arguments (and ``now``) give the same records."""
    rng = random.Random(seed)
    syms = [f"T{i:03d}" for i in range(tickers)]
    now = (now or datetime.now(UTC)).replace(second=0, microsecond=0)
    ds = Dataset()
    start = int((now - timedelta(days=3)).timestamp() * 1000)
    for i in range(articles):
        pub = start + rng.randrange(0, 3 * 86400) * 1000
        # a skewed ticker popularity so the trending ranking is meaningful
        k = rng.choice((1, 1, 2, 3))
        chosen = sorted({syms[min(int(rng.expovariate(1 / (tickers / 4))), tickers - 1)] for _ in range(k)})
        aid = f"art-{seed}-{i:06d}"
        ds.news.append(
            {
                "id": aid,
                "published_utc": iso(pub),
                "title": f"Headline {i}",
                "description": f"Description of article {i}",
                "article_url": f"https://news.example/{aid}",
                "author": "Reporter",
                "publisher": {
                    "name": rng.choice(("Wire", "Daily", "Street")),
                    "homepage_url": "https://p.example",
                    "logo_url": "",
                    "favicon_url": "",
                },  # fmt: skip
                "tickers": chosen,
                "keywords": ["markets"],
                "image_url": "",
                "amp_url": "",
                "insights": _insights(seed, aid, chosen),
                "ingested_at": iso(pub + 1500),
            }
        )
        if rng.random() < scored:
            label = rng.choice(LABELS)
            sent = {"positive": 1, "negative": -1, "neutral": 0}[label] * round(rng.uniform(0.5, 1.0), 4)
            ds.sentiment.append(
                {
                    "id": aid,
                    "published_utc": iso(pub),
                    "title": f"Headline {i}",
                    "tickers": chosen,
                    "label": label,
                    "score": round(rng.uniform(0.5, 1.0), 4),
                    "sentiment": sent,
                    "model": "rtfin-minilm-fin",
                    "scored_at": iso(pub + 5000),
                }  # fmt: skip
            )
    day0 = int((now - timedelta(hours=2)).timestamp() * 1000)
    for sym in syms:
        price, acc = rng.uniform(20, 400), 0.0
        for m in range(minutes):
            s = day0 + m * 60_000
            o = price
            c = max(1.0, o * (1 + rng.gauss(0, 0.002)))
            h, low = max(o, c) * 1.001, min(o, c) * 0.999
            v = float(rng.randint(100, 10_000))
            acc += v
            bar = {"ev": "AM", "sym": sym, "s": s, "e": s + 60_000, "o": round(o, 4), "h": round(h, 4),
                   "l": round(low, 4), "c": round(c, 4), "v": v, "vw": round((o + c) / 2, 4), "av": acc,
                   "a": round((o + c) / 2, 4), "z": 100.0, "otc": False,
                   "ingested_at": iso(s + 61_000)}  # fmt: skip
            ds.bars.append(bar)
            for k in range(second_bars):
                ds.bars.append({**bar, "ev": "A", "s": s + k * 1000, "e": s + (k + 1) * 1000, "v": v / 60})
            price = c
    return ds


BAD_RECORDS = {
    "news_raw": [("bad-1", b"{not json"), ("bad-2", json.dumps({"title": "no id"}).encode())],
    "stocks_aggs": [("X", json.dumps({"ev": "XX", "sym": "X", "s": 1, "e": 2}).encode())],
    "news_sentiment": [("bad-3", json.dumps({"id": "bad-3", "label": "great", "score": 2}).encode())],
}


def produce(bootstrap: str, topics: dict[str, str], batches: dict[str, list[tuple[str, bytes]]]) -> int:
    """Produce (key, value) lists to the topics of their roles; returns the number produced."""
    from confluent_kafka import Producer

    p = Producer({"bootstrap.servers": bootstrap, "linger.ms": 20, "enable.idempotence": True})
    n = 0
    for role, msgs in batches.items():
        for key, value in msgs:
            while True:
                try:
                    p.produce(topics[role], key=key.encode(), value=value)
                    break
                except BufferError:
                    p.poll(0.1)
            n += 1
        p.poll(0)
    left = p.flush(60)
    assert left == 0, f"{left} messages not delivered"
    return n
