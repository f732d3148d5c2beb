"""Training frames about figures: changes, comparisons, swings between loss and profit, flat figures."""

from __future__ import annotations

from rtfin_cli.sentiment.corpus import Row
from rtfin_cli.sentiment.corpus.train_words import (
    BAD,
    COMPANIES,
    DOWN,
    DOWN_N,
    GOOD,
    PERIODS,
    PREV,
    UP,
    UP_N,
    R,
    amounts,
    pct,
    pick,
    poss,
)


def metric_change(rng: R) -> Row:
    """A figure changes with an explicit verb: the metric's polarity times the direction gives the label."""
    good, up = rng.random() < 0.7, rng.random() < 0.5
    metric = pick(rng, GOOD if good else BAD)
    new, old = amounts(rng, up, metric)
    co, per = pick(rng, COMPANIES), pick(rng, PERIODS)
    verbs = UP if up else DOWN
    verb = pick(rng, verbs if good else tuple(v for v in verbs if v not in ("improved", "weakened")))
    form = rng.randrange(6)
    if form == 0:
        text = f"{poss(co)} {metric} {verb} to {new} from {old} in {per}."
    elif form == 1:
        text = f"In {per}, {metric} {verb} by {pct(rng)} to {new}."
    elif form == 2:
        text = f"{metric} {verb} {pct(rng)} to {new} ({old})."
    elif form == 3:
        text = f"{co} said its {metric} for {per} {verb} to {new}, from {old} {pick(rng, PREV)}."
    elif form == 4:
        text = f"The company's {metric} {verb} to {new} in {per} compared with {old} {pick(rng, PREV)}."
    else:
        text = f"{co} {metric} {verb} {pct(rng)} in {per}"
    return ("positive" if good == up else "negative"), text


def metric_compare(rng: R) -> Row:
    """A figure and its comparison without a direction verb: the numbers alone decide."""
    good, up = rng.random() < 0.7, rng.random() < 0.5
    metric = pick(rng, GOOD if good else BAD)
    new, old = amounts(rng, up, metric)
    per = pick(rng, PERIODS)
    form = rng.randrange(6)
    if form == 0:
        text = f"{metric} was {new}, compared with {old} {pick(rng, PREV)}."
    elif form == 1:
        text = f"{metric} totalled {new} ({old}) in {per}."
    elif form == 2:
        text = f"In {per}, {metric} amounted to {new} versus {old} {pick(rng, PREV)}."
    elif form == 3:
        word = "up" if up else "down"
        text = f"{metric} came in at {new}, {word} from {old}."
    elif form == 4:
        text = f"{pick(rng, COMPANIES)} reported {metric} of {new} for {per}, compared to {old} {pick(rng, PREV)}."
    else:
        word = pick(rng, UP_N if up else DOWN_N)
        text = (
            f"{metric} reached {new}, an {word} of {pct(rng)}."
            if word[0] in "ai"
            else (f"{metric} reached {new}, a {word} of {pct(rng)}.")
        )
    return ("positive" if good == up else "negative"), text


def loss_profit_swing(rng: R) -> Row:
    """Losses narrowing/widening, swings into or out of the red, negative cash flow."""
    co, per = pick(rng, COMPANIES), pick(rng, PERIODS)
    small, big = amounts(rng, False)
    form = rng.randrange(8)
    if form == 0:
        return (
            "positive",
            f"{co} narrowed its {pick(rng, ('net', 'operating', 'pre-tax'))} loss to {small} from {big} in {per}.",
        )
    if form == 1:
        return (
            "negative",
            f"{poss(co)} {pick(rng, ('net', 'operating'))} loss widened to {big} from {small} in {per}.",
        )
    if form == 2:
        return (
            "positive",
            f"{co} swung to a net profit of {small} in {per} from a loss of {big} {pick(rng, PREV)}.",
        )
    if form == 3:
        return (
            "negative",
            f"{co} swung to an operating loss of {small} in {per}, compared with a profit of {big}.",
        )
    if form == 4:
        return (
            "negative",
            f"Cash flow from operating activities was a negative {small}, compared with {big} {pick(rng, PREV)}.",
        )
    if form == 5:
        return "positive", f"Operating loss was {small}, compared with a loss of {big} {pick(rng, PREV)}."
    if form == 6:
        return "negative", f"Operating loss totalled {big} (loss of {small})."
    return (
        "positive",
        f"{co} returns to profit in {per} after {pick(rng, ('cost cuts', 'a strong order book', 'higher prices'))}",
    )


def flat_and_absolute(rng: R) -> Row:
    """Neutral figures: unchanged, in line, or stated without any comparison."""
    metric, per, co = pick(rng, GOOD + BAD), pick(rng, PERIODS), pick(rng, COMPANIES)
    amt, _ = amounts(rng, True, metric)
    form = rng.randrange(6)
    if form == 0:
        return "neutral", f"{metric} remained unchanged at {amt} in {per}."
    if form == 1:
        return "neutral", f"{poss(co)} {metric} was flat year on year at {amt}."
    if form == 2:
        return "neutral", f"{metric} for {per} totalled {amt}."
    if form == 3:
        return (
            "neutral",
            f"{co} will publish its results for {per} on {rng.randint(2, 28)} {pick(rng, ('February', 'April', 'July', 'October'))}.",
        )
    if form == 4:
        return (
            "neutral",
            f"The figures for {per} are unaudited and the comparison figures have been restated.",
        )
    return "neutral", f"{co} reported {metric} of {amt}, in line with analysts' expectations."
