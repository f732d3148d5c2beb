"""The training generator's vocabulary and small helpers (companies, figures, verbs, markets)."""

from __future__ import annotations

import random

R = random.Random
COMPANIES = (
    "Aldren Systems", "Borvik Group", "Calder Foods", "Daventry Mining", "Elmstead Pharma", "Fennick Steel",
    "Gorsen Logistics", "Halvard Paper", "Istrom Telecom", "Jorvale Energy", "Kestrel Robotics",
    "Lundmark Bank", "Marwick Retail", "Norrfell Forest", "Oakhurst Media", "Pellham Chemicals",
    "Quarrow Shipping", "Rainford Software", "Selkirk Motors", "Tarnby Construction", "Ulvik Foods",
    "Varden Semiconductors", "Westerby Insurance", "Yarrow Biotech", "Zennor Airlines", "Ashgrove Capital",
    "Brantwood Packaging", "Corrib Utilities", "Dunmore Textiles", "Eskdale Engineering",
    "Fairholm Hotels", "Glenrock Minerals", "Harlow Devices", "Inverell Grain", "Kilbride Cables",
)  # fmt: skip
TICKERS = ("ALDR", "BRVK", "CLDR", "DVNM", "ELPH", "FNKS", "GRSN", "HLVP", "ISTM", "JRVE", "KSTR", "LNDB")
CUR = ("EUR", "USD", "SEK", "GBP", "DKK")
PERIODS = (
    "the first quarter", "the second quarter", "the third quarter", "the fourth quarter", "the first half",
    "January-March", "April-June", "July-September", "October-December", "the financial year", "2023", "2024",
    "the review period", "the first nine months",
)  # fmt: skip
PREV = (
    "a year earlier",
    "in the corresponding period of 2023",
    "in the same period last year",
    "the year before",
)
GOOD = (
    "net sales", "revenue", "operating profit", "net profit", "profit before taxes", "EBITDA", "order intake",
    "order backlog", "earnings per share", "operating margin", "gross margin", "comparable sales", "cash flow from operations",
    "deliveries", "passenger numbers", "market share", "net interest income", "subscriber base", "adjusted EBIT",
)  # fmt: skip
PERCENT_METRICS = ("operating margin", "gross margin", "market share", "customer churn")
COUNT_METRICS = ("deliveries", "passenger numbers", "subscriber base")
BAD = (
    "net loss",
    "operating loss",
    "costs",
    "net debt",
    "impairment charges",
    "customer churn",
    "credit losses",
    "pre-tax loss",
)
UP = ("rose", "increased", "grew", "climbed", "jumped", "improved", "went up", "advanced", "surged")
DOWN = (
    "fell",
    "decreased",
    "declined",
    "dropped",
    "slipped",
    "went down",
    "contracted",
    "slumped",
    "weakened",
)
UP_N, DOWN_N = ("increase", "rise", "growth", "improvement"), ("decrease", "decline", "drop", "fall")
MARKETS = (
    "the Nordic region",
    "Germany",
    "Poland",
    "North America",
    "the Baltic countries",
    "Asia",
    "the UK",
)
PRODUCTS = (
    "wind turbine towers", "paper machines", "container cranes", "software licences", "rail cars",
    "packaging lines", "network equipment", "frozen foods", "medical scanners", "elevators", "steel pipes",
)  # fmt: skip
CUSTOMERS = ("a European utility", "a US retailer", "the Finnish Defence Forces", "a Chinese carmaker", "a major telecom operator", "a municipal transport authority")  # fmt: skip
ANALYSTS = (
    "an analyst at a Nordic bank",
    "brokerage Halden Securities",
    "Morrow & Co",
    "analysts at Kelby Research",
)


def pick(rng: R, seq: tuple[str, ...]) -> str:
    return rng.choice(seq)


def poss(name: str) -> str:
    return f"{name}'" if name.endswith("s") else f"{name}'s"


def amounts(rng: R, up: bool, metric: str = "") -> tuple[str, str]:
    """Two amounts (new, old) in one style that fits ``metric``; new > old when ``up``."""
    old = round(rng.uniform(0.5, 400), 1)
    ratio = rng.uniform(1.02, 1.9)
    new = round(old * ratio if up else old / ratio, 1)
    if new == old:
        new = round(new + (0.1 if up else -0.1), 1)
    if metric in PERCENT_METRICS:
        old = round(rng.uniform(1, 40), 1)
        new = round(old + rng.uniform(0.1, 6) * (1 if up else -1), 1)
        return f"{new}%", f"{old}%"
    if metric == "earnings per share":
        return f"EUR {new / 200:.2f}", f"EUR {old / 200:.2f}"
    if metric in COUNT_METRICS:
        return f"{int(new * 1000):,}", f"{int(old * 1000):,}"
    cur, unit = pick(rng, CUR), pick(rng, ("mn", "million", "m", "bn", "mln"))
    if unit == "m":
        return f"{cur}{new}m", f"{cur}{old}m"
    return f"{cur} {new} {unit}", f"{cur} {old} {unit}"


def pct(rng: R) -> str:
    return f"{rng.choice([round(rng.uniform(0.5, 60), 1), rng.randint(2, 45)])}%"
