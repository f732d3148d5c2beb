"""The shipped replay dataset: size, balance, determinism, and the shape of the generated bars."""

from __future__ import annotations

import gzip
import json
from collections import Counter

from rtfin_cli.local.market import dataset as ds
from rtfin_cli.local.market import generate


def test_tickers_span_sectors() -> None:
    tickers = ds.tickers()
    assert 90 <= len(tickers) <= 110 and len({t.symbol for t in tickers}) == len(tickers)
    assert len({t.sector for t in tickers}) >= 10 and all(t.base_price > 0 for t in tickers)


def test_news_is_large_balanced_and_labelled() -> None:
    news = ds.news()
    assert len(news) >= 5000 and len({a["id"] for a in news}) == len(news)
    labels = Counter(a["label"] for a in news)
    assert set(labels) == {"positive", "negative", "neutral"}
    assert all(n / len(news) >= 0.25 for n in labels.values())
    symbols = {t.symbol for t in ds.tickers()}
    assert all(a["tickers"] and set(a["tickers"]) <= symbols for a in news)
    times = [(a["published_utc"], a["id"]) for a in news]
    assert times == sorted(times)
    assert len({a["published_utc"] for a in news}) < len(news)  # some articles share a second
    assert ds.news_labels()[news[0]["id"]] == news[0]["label"]


def test_the_committed_file_is_the_generators_output() -> None:
    with gzip.open(ds.DATA / "news.jsonl.gz", "rt", encoding="utf-8") as fh:
        shipped = [json.loads(line) for line in fh]
    assert shipped == generate.articles()


def test_minute_bars_are_consistent_deterministic_and_u_shaped() -> None:
    day = ds.day_bars(2)
    assert len(day) == ds.SESSION_MINUTES and len(day[0]) == len(ds.tickers())
    ds.day_bars.cache_clear()
    assert ds.day_bars(2) == day
    for minute in (day[0], day[200], day[-1]):
        for b in minute:
            assert b["l"] <= min(b["o"], b["c"]) <= max(b["o"], b["c"]) <= b["h"]
            assert b["e"] - b["s"] == ds.MINUTE_MS and b["v"] > 0
    vol = [sum(b["v"] for b in minute) for minute in day]
    edges = sum(vol[:30]) + sum(vol[-30:])
    middle = sum(vol[180:240])
    assert edges > 2 * middle
    aapl = [m[0] for m in day]
    assert aapl[-1]["av"] == sum(b["v"] for b in aapl)
    assert all(aapl[i]["c"] == aapl[i + 1]["o"] for i in range(len(aapl) - 1))


def test_second_aggregates_add_up_to_the_minute() -> None:
    bar = ds.day_bars(0)[10][5]
    secs = ds.second_aggs(bar)
    assert len(secs) == 60 and sum(s["v"] for s in secs) == bar["v"]
    assert secs[0]["s"] == bar["s"] and secs[-1]["e"] == bar["e"] and secs[-1]["c"] == bar["c"]


def test_session_calendar() -> None:
    opens = ds.trading_days()
    assert len(opens) == 10
    assert ds.session_index(opens[1] + 5 * ds.MINUTE_MS) == (1, 5)
    assert ds.session_index(opens[1] - ds.MINUTE_MS) is None
    assert ds.next_session_minute(opens[0] + ds.SESSION_MINUTES * ds.MINUTE_MS) == opens[1]
    assert ds.next_session_minute(ds.END_MS) is None


def test_articles_carry_the_providers_insights_in_the_api_shape() -> None:
    """Massive's ``insights``: {ticker, sentiment, sentiment_reasoning} per ticker, as the official client's
    ``Insight`` model reads them; the provider is another model, so it does not always agree with the label."""
    from massive.rest.models.tickers import Insight

    news = ds.news()
    with_insights = [a for a in news if a["insights"]]
    assert 0.9 * len(news) <= len(with_insights) < len(news)  # a few articles have none
    main_agrees = []
    for a in with_insights:
        tickers = [i["ticker"] for i in a["insights"]]
        assert len(tickers) == len(set(tickers)) and set(tickers) <= set(a["tickers"])
        for i in a["insights"]:
            assert set(i) == {"ticker", "sentiment", "sentiment_reasoning"}
            assert Insight.from_dict(i) == Insight(**i)
            assert (
                i["sentiment"] in ("positive", "negative", "neutral") and len(i["sentiment_reasoning"]) > 20
            )
        if tickers[0] == a["tickers"][0]:
            main_agrees.append(a["insights"][0]["sentiment"] == a["label"])
    assert 0.6 < sum(main_agrees) / len(main_agrees) < 0.95
    peers = [a for a in with_insights if len(a["tickers"]) > 1]
    assert any(len(a["insights"]) == 1 for a in peers) and any(len(a["insights"]) == 2 for a in peers)
