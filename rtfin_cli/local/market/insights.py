"""The provider's per-ticker insights of a replay article: a sentiment and a short reasoning (written here).

Massive's news results carry ``insights``: a list of {ticker, sentiment, sentiment_reasoning} (the
official client's ``Insight`` model). The replay's provider is a different model from rtfin's: it reads
most articles as they were written, reads some differently (a mixed or muted reading), judges a named
peer on its own terms, and leaves some tickers (and a few articles) without an insight.
"""

from __future__ import annotations

import random

NO_INSIGHTS = 0.05  # articles without any insight
SAME_READING = 0.8  # the main ticker's insight agrees with the label the article was written with
PEER_INSIGHT = 0.6  # a peer ticker gets its own insight
OTHER_READING = {  # written label -> [(provider label, weight)] when the provider reads it differently
    "positive": [("neutral", 0.7), ("negative", 0.3)],
    "negative": [("neutral", 0.7), ("positive", 0.3)],
    "neutral": [("positive", 0.5), ("negative", 0.5)],
}
# A peer named in the headline: written label -> [(the peer's label, weight)]; a peer only tagged: neutral.
NAMED_PEER = {
    "positive": [("positive", 0.5), ("neutral", 0.5)],  # a partnership
    "negative": [("positive", 0.6), ("neutral", 0.4)],  # it wins what the company loses
    "neutral": [("neutral", 0.8), ("positive", 0.1), ("negative", 0.1)],  # a comparison
}
AS_WRITTEN = {
    "positive": [
        "{company} reported stronger demand and results than expected, which the article presents as "
        "supportive for the stock.",
        "The article highlights accelerating growth at {company} and a more confident outlook from "
        "management.",
        "Analysts cited in the article see {company}'s announcement as a sign of durable momentum.",
        "{company}'s news points to higher revenue and cash flow, a favourable read for shareholders.",
    ],
    "negative": [
        "{company} faces weaker demand and rising costs, which the article expects to weigh on results.",
        "The article describes a setback that puts pressure on {company}'s revenue and margins.",
        "Analysts cited in the article turned more cautious on {company} after the news.",
        "The development raises concerns about {company}'s growth over the coming quarters.",
    ],
    "neutral": [
        "The article reports a routine corporate update from {company} with no clear effect on its outlook.",
        "{company} is covered in a scheduling or administrative context; no change in fundamentals is "
        "implied.",
        "The article is informational and gives no indication of how {company}'s results will move.",
    ],
}
READ_OTHERWISE = {
    "positive": [
        "Although the update is routine, it suggests {company} is on track with its plans, a mildly "
        "positive sign.",
        "Despite the setback described, the article notes {company}'s strong market position, which "
        "limits the downside.",
    ],
    "negative": [
        "The upbeat headline comes with higher spending at {company} that could weigh on margins.",
        "The update leaves open questions about {company}'s near-term growth, which investors may read "
        "negatively.",
    ],
    "neutral": [
        "The news about {company} was largely expected by the market, so its impact appears limited.",
        "The article gives few figures, so the effect on {company}'s outlook is unclear.",
    ],
}
ABOUT_PEER = {
    "positive": [
        "{peer} stands to gain from the development at {company} described in the article.",
        "The article's news involving {company} opens a revenue opportunity for {peer}.",
    ],
    "negative": ["The article's comparison with {company} is unfavourable to {peer}."],
    "neutral": [
        "{peer} is mentioned only as a point of comparison for {company}.",
        "The article names {peer} in passing; nothing in it bears on {peer}'s outlook.",
    ],
}


def _pick(rng: random.Random, weighted: list[tuple[str, float]]) -> str:
    return rng.choices([x for x, _ in weighted], [w for _, w in weighted])[0]


def _insight(rng: random.Random, ticker: str, label: str, reasons: list[str], **names: str) -> dict[str, str]:
    reasoning = rng.choice(reasons).format(**names)
    return {"ticker": ticker, "sentiment": label, "sentiment_reasoning": reasoning}


def insights(
    seed: int, art_id: str, label: str, title: str, tickers: list[str], names: dict[str, str]
) -> list[dict[str, str]]:
    """The insights of one article (its own random stream: the other fields do not depend on them)."""
    rng = random.Random(f"{seed}:{art_id}:insights")
    if rng.random() < NO_INSIGHTS:
        return []
    main, company = tickers[0], names[tickers[0]]
    if rng.random() < SAME_READING:
        out = [_insight(rng, main, label, AS_WRITTEN[label], company=company)]
    else:
        other = _pick(rng, OTHER_READING[label])
        out = [_insight(rng, main, other, READ_OTHERWISE[other], company=company)]
    for peer in tickers[1:]:
        if rng.random() >= PEER_INSIGHT:
            continue
        named = names[peer] in title
        peer_label = _pick(rng, NAMED_PEER[label]) if named else "neutral"
        out.append(_insight(rng, peer, peer_label, ABOUT_PEER[peer_label], company=company, peer=names[peer]))
    return out
