"""Generate the replay dataset shipped in ``data/`` (seeded, deterministic; its output is committed).

    python -m rtfin_cli.local.market.generate      # rewrites data/tickers.tsv and data/news.jsonl.gz

Every headline and description is written from this module's templates for this project. Each article
carries the sentiment ``label`` it was written with (positive / negative / neutral), so the sentiment model
can be evaluated end to end against the replayed news, and the provider's ``insights`` (see insights.py).
"""

from __future__ import annotations

import gzip
import hashlib
import json
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

from rtfin_cli.local.market.insights import insights
from rtfin_cli.local.market.templates import (
    AUTHORS,
    DESCRIPTIONS,
    KEYWORDS,
    NEGATIVE_TITLES,
    NEUTRAL_TITLES,
    POSITIVE_TITLES,
    PRODUCTS,
    PUBLISHERS,
    TICKERS,
    WEEKDAYS,
)

DATA = Path(__file__).resolve().parent / "data"
SEED = 20250106
START = datetime(2025, 1, 6, tzinfo=UTC)  # a Monday; the dataset spans 14 days
DAYS = 14
N_ARTICLES = 5200
LABEL_WEIGHTS = {"positive": 0.37, "negative": 0.33, "neutral": 0.30}


def _slug(text: str) -> str:
    return "-".join("".join(c.lower() if c.isalnum() else " " for c in text).split())[:80]


def _publish_time(rng: random.Random) -> datetime:
    """Weekdays busier than weekends, most news between 11:00 and 22:00 UTC (US pre-market to close)."""
    while True:
        day = rng.randrange(DAYS)
        weekend = (START + timedelta(days=day)).weekday() >= 5
        if weekend and rng.random() < 0.7:
            continue
        hour = rng.gauss(16.5, 3.5) if rng.random() < 0.85 else rng.uniform(0, 24)
        if 0 <= hour < 24:
            return START + timedelta(days=day, seconds=int(hour * 3600) + rng.randrange(60))


def _fields(
    rng: random.Random, sym: str, company: str, sector: str, price: float, peer: str
) -> dict[str, object]:
    """The values a headline or description template is filled with."""
    return {
        "company": company,
        "ticker": sym,
        "product": rng.choice(PRODUCTS[sector]),
        "peer": peer,
        "pct": rng.choice([2, 3, 4, 5, 6, 7, 8, 9, 10, 12, 15, 18, 20, 25]),
        "quarter": rng.choice(["Fourth Quarter", "Q4", "Holiday Quarter", "First Quarter"]),
        "amount": rng.choice([1, 2, 3, 5, 7, 10, 15, 20]),
        "count": rng.choice([800, 1200, 2500, 4000, 6000]),
        "price": round(price * rng.uniform(0.7, 1.35)),
        "weekday": rng.choice(WEEKDAYS),
    }


def _record(
    rng: random.Random,
    art_id: str,
    title: str,
    description: str,
    tickers: list[str],
    published: datetime,
    label: str,
    sector: str,
    insights: list[dict[str, str]],
) -> dict[str, object]:
    """One article as Polygon/Massive's news API returns it, plus its sentiment ``label``."""
    publisher, home = rng.choice(PUBLISHERS)
    slug = _slug(title)
    return {
        "id": art_id,
        "publisher": {
            "name": publisher,
            "homepage_url": home,
            "logo_url": f"{home}/logo.png",
            "favicon_url": f"{home}/favicon.ico",
        },
        "title": title,
        "author": rng.choice(AUTHORS),
        "published_utc": published.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "article_url": f"{home}/news/{slug}-{art_id[:8]}",
        "tickers": tickers,
        "amp_url": f"{home}/amp/{slug}-{art_id[:8]}",
        "image_url": f"{home}/images/{art_id[:16]}.jpg",
        "description": description,
        "keywords": rng.sample(KEYWORDS[label], 2) + [sector.lower()],
        "insights": insights,
        "label": label,
    }


def articles(seed: int = SEED) -> list[dict[str, object]]:
    """The dataset's news, ordered by (published_utc, id)."""
    rng = random.Random(seed)
    labels = list(LABEL_WEIGHTS)
    weights = list(LABEL_WEIGHTS.values())
    titles = {"positive": POSITIVE_TITLES, "negative": NEGATIVE_TITLES, "neutral": NEUTRAL_TITLES}
    # popular names get more coverage (Zipf-like), so "trending tickers" has a shape
    popularity = [1.0 / (1 + i) ** 0.6 for i in range(len(TICKERS))]
    order = list(range(len(TICKERS)))
    rng.shuffle(order)
    pop = [popularity[order.index(i)] for i in range(len(TICKERS))]
    names = {t[0]: t[1] for t in TICKERS}
    out: list[dict[str, object]] = []
    last_time: datetime | None = None
    for i in range(N_ARTICLES):
        label = rng.choices(labels, weights)[0]
        sym, company, sector, price, _, _ = rng.choices(TICKERS, pop)[0]
        peer = rng.choice([t for t in TICKERS if t[2] == sector and t[0] != sym])
        fields = _fields(rng, sym, company, sector, price, peer[1])
        template = rng.choice(titles[label])
        title = template.format(**fields)
        description = rng.choice(DESCRIPTIONS[label]).format(**fields)
        tickers = [sym] + ([peer[0]] if "{peer}" in template or rng.random() < 0.12 else [])
        # wire bursts: some articles share the exact second of the previous one
        published = last_time if last_time is not None and rng.random() < 0.08 else _publish_time(rng)
        last_time = published
        art_id = hashlib.sha256(f"{seed}:{i}:{title}".encode()).hexdigest()
        provider = insights(seed, art_id, label, title, tickers, names)
        out.append(_record(rng, art_id, title, description, tickers, published, label, sector, provider))
    out.sort(key=lambda a: (str(a["published_utc"]), str(a["id"])))
    return out


def write(data_dir: Path = DATA) -> tuple[Path, Path]:
    data_dir.mkdir(parents=True, exist_ok=True)
    tickers = data_dir / "tickers.tsv"
    lines = ["symbol\tname\tsector\tbase_price\tdaily_vol_pct\tavg_volume_m"]
    lines += [f"{s}\t{n}\t{sec}\t{p}\t{v}\t{m}" for s, n, sec, p, v, m in TICKERS]
    tickers.write_text("\n".join(lines) + "\n", encoding="utf-8")
    news = data_dir / "news.jsonl.gz"
    body = "".join(json.dumps(a, separators=(",", ":")) + "\n" for a in articles())
    # mtime=0: byte-identical output on every run
    with open(news, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as fh:
        fh.write(body.encode("utf-8"))
    return tickers, news


if __name__ == "__main__":
    for path in write():
        print(f"wrote {path} ({path.stat().st_size} bytes)")
