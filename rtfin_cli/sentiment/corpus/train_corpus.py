"""Training-side sentence generator: company releases, wire-news sentences and headlines.

Labels follow what the sentence says for the company's investors: a good figure going up or a bad
one (loss, costs, debt) going down is positive, and the reverse negative, whatever the verb
("rose", "from ... to", "compared with", "narrowed", "(previous year)"); unchanged figures,
figures without a comparison and plain corporate facts are neutral, also when they contain charged
words ("loss prevention", "exempted"); in mixed sentences the main clause decides ("despite ...").
"""

from __future__ import annotations

import random

from rtfin_cli.sentiment.corpus import Frame, Row

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


def estimates(rng: R) -> Row:
    co, q = pick(rng, COMPANIES), rng.randint(1, 4)
    est = round(rng.uniform(0.1, 3), 2)
    beat = rng.random() < 0.5
    eps = round(est + rng.uniform(0.01, 0.4) * (1 if beat else -1), 2)
    form = rng.randrange(5)
    if form == 0:
        verb = "beating" if beat else "missing"
        return (
            "positive" if beat else "negative"
        ), f"{co} reported EPS of {eps} dollars, {verb} the consensus estimate of {est}."
    if form == 1:
        head = (
            pick(rng, ("beats", "tops", "exceeds"))
            if beat
            else pick(rng, ("misses", "falls short of", "lags"))
        )
        return ("positive" if beat else "negative"), f"{co} Q{q} profit {head} forecasts"
    if form == 2:
        word = "above" if beat else "below"
        return (
            "positive" if beat else "negative"
        ), f"Quarterly revenue at {co} came in {word} market expectations."
    if form == 3:
        return "neutral", f"{poss(co)} Q{q} earnings were in line with consensus."
    word = "better" if beat else "worse"
    return (
        "positive" if beat else "negative"
    ), f"{co} posts {word}-than-expected {pick(rng, ('results', 'sales', 'margins'))}"


def guidance(rng: R) -> Row:
    co, metric = (
        pick(rng, COMPANIES),
        pick(rng, ("net sales", "operating profit", "revenue", "adjusted EBIT", "earnings")),
    )
    year = pick(rng, ("2024", "2025", "the full year", "the current year"))
    form = rng.randrange(9)
    if form == 0:
        return "positive", f"{co} {pick(rng, ('raises', 'lifts', 'upgrades'))} its {year} {metric} guidance"
    if form == 1:
        return "negative", f"{co} {pick(rng, ('cuts', 'lowers', 'slashes'))} {year} {metric} forecast"
    if form == 2:
        return "neutral", f"{co} {pick(rng, ('reiterates', 'confirms', 'maintains'))} its outlook for {year}."
    if form == 3:
        return (
            "positive",
            f"{co} expects its {metric} for {year} to {pick(rng, ('increase', 'grow', 'improve'))} from the previous year.",
        )
    if form == 4:
        return (
            "negative",
            f"{co} expects its {metric} for {year} to {pick(rng, ('decrease', 'decline', 'be lower than last year'))}.",
        )
    if form == 5:
        return "neutral", f"{metric} for {year} is expected to remain at the previous year's level."
    if form == 6:
        return (
            "negative",
            f"{co} issues profit warning, citing {pick(rng, ('weak demand', 'higher raw material costs', 'project delays'))}",
        )
    if form == 7:
        return "negative", f"{co} warned that its {metric} could fall short of its earlier forecast."
    return "positive", f"{co} now sees {year} {metric} above its previous range."


def orders(rng: R) -> Row:
    co, amt = pick(rng, COMPANIES), amounts(rng, True)[0]
    prod, cust = pick(rng, PRODUCTS), pick(rng, CUSTOMERS)
    form = rng.randrange(7)
    if form == 0:
        return (
            "positive",
            f"{co} {pick(rng, ('wins', 'receives', 'signs', 'secures'))} {amt} order for {prod} from {cust}",
        )
    if form == 1:
        return "positive", f"{co} has signed a contract worth {amt} with {cust} to supply {prod}."
    if form == 2:
        return "negative", f"{cust} has cancelled its {amt} order for {prod} from {co}."
    if form == 3:
        return "negative", f"{co} loses {prod} contract with {cust}"
    if form == 4:
        return (
            "positive",
            f"The order will keep {poss(co)} {prod} plant running at full capacity into next year.",
        )
    if form == 5:
        return "neutral", f"The value of the order was not disclosed, {co} said."
    return "positive", f"{co} won a framework agreement with {cust} for the delivery of {prod}."


def jobs(rng: R) -> Row:
    co, n, mkt = pick(rng, COMPANIES), rng.choice([40, 85, 120, 250, 400, 1200, 3000]), pick(rng, MARKETS)
    form = rng.randrange(8)
    if form == 0:
        return "negative", f"{co} to cut {n} jobs in {mkt}"
    if form == 1:
        return "negative", f"{co} will lay off up to {n} employees as it closes its plant in {mkt}."
    if form == 2:
        return "negative", f"Personnel negotiations at {co} may lead to the reduction of {n} jobs."
    if form == 3:
        return (
            "positive",
            f"The restructuring is expected to generate annual cost savings of {amounts(rng, True)[0]}.",
        )
    if form == 4:
        return "positive", f"{co} to create {n} new jobs as it expands in {mkt}"
    if form == 5:
        return "positive", f"The efficiency programme lifted {poss(co)} margins and lowered unit costs."
    if form == 6:
        return "neutral", f"{co} employs about {n * 3} people in {mkt}."
    return "negative", f"{co} announces temporary layoffs affecting {n} staff due to weak demand."


def deals(rng: R) -> Row:
    co, other = rng.sample(COMPANIES, 2)
    amt, mkt = amounts(rng, True)[0], pick(rng, MARKETS)
    form = rng.randrange(8)
    if form == 0:
        return "neutral", f"{co} agreed to acquire {other} for {amt}."
    if form == 1:
        return (
            "positive",
            f"The acquisition of {other} strengthens {poss(co)} position in {mkt} and is expected to add to earnings.",
        )
    if form == 2:
        return "negative", f"{poss(co)} planned takeover of {other} collapses after regulators object"
    if form == 3:
        return (
            "neutral",
            f"{co} completed the sale of its {pick(rng, PRODUCTS)} unit to {other} on {rng.randint(1, 28)} March.",
        )
    if form == 4:
        return "neutral", "The transaction is subject to approval by the competition authorities."
    if form == 5:
        return "positive", f"Shares in {other} jump after {co} offers a 40% premium"
    if form == 6:
        return "negative", f"{co} writes down the value of its {mkt} acquisition"
    return (
        "neutral",
        f"{co} is a buyer rather than a seller in the consolidation of {mkt}'s market, its chairman said.",
    )


def ratings(rng: R) -> Row:
    co, who = pick(rng, COMPANIES), pick(rng, ANALYSTS)
    form = rng.randrange(8)
    if form == 0:
        return "positive", f"{who} upgraded {co} to buy from hold."
    if form == 1:
        return "negative", f"{co} downgraded to sell at {who.split(' at ')[-1]}"
    if form == 2:
        return "neutral", f"{who} reiterated its hold rating on {co}."
    if form == 3:
        return "positive", f"{who} raised its price target on {co} to {rng.randint(20, 90)} euros."
    if form == 4:
        return "negative", f"{who} cut its target price for {co} shares, citing weaker margins."
    if form == 5:
        return "negative", f"The rating agency lowered {poss(co)} credit rating to junk status."
    if form == 6:
        return "positive", f"{poss(co)} credit outlook was revised to positive from stable."
    return "neutral", f"{who} initiated coverage of {co} with a neutral recommendation."


def charged_neutral(rng: R) -> Row:
    """Plain facts that contain words a keyword reader would take as good or bad news."""
    co, mkt = pick(rng, COMPANIES), pick(rng, MARKETS)
    return "neutral", pick(rng, (
        f"{co} develops loss-prevention systems for retailers.",
        f"{co} provides debt collection services to banks in {mkt}.",
        f"{co} was exempted from the obligation to publish a prospectus for the share issue.",
        f"{co} left the {mkt} market in 2019 and now concentrates on its home market.",
        "The company manufactures crash barriers and fire doors.",
        f"{poss(co)} customers include bankruptcy estates and insolvency administrators.",
        "The drug is intended to treat acute kidney failure.",
        "The fund invests in distressed debt and special situations.",
        f"{co} specialises in the demolition of industrial buildings.",
        "The shares will be delisted from the exchange once the merger is registered.",
        "The attack simulation service helps banks test their cyber defences.",
        f"Profit warnings and other stock exchange releases are published on {poss(co)} website.",
        f"{co} sells pest-control and hazardous-waste services.",
        f"The former plant site was sold to the municipality in {rng.randint(2005, 2018)}.",
        f"{poss(co)} product range includes risk management software for insurers.",
        "The risks of the business are described in the annual report.",
        f"{co} makes cutting tools for the metal industry.",
        "The killer app of the fair was a parking assistant, visitors said.",
        f"Trading in {co} shares was halted briefly pending an announcement, in accordance with exchange rules.",
        f"{co} is not a takeover target, its CEO told reporters, adding that it is focused on its own plans.",
    ))  # fmt: skip


def corporate_neutral(rng: R) -> Row:
    co, other, mkt = *rng.sample(COMPANIES, 2), pick(rng, MARKETS)
    name = pick(rng, ("Anna Berg", "Mikko Laine", "James Holt", "Sofia Lind", "Peter Vance", "Laura Kask"))
    return "neutral", pick(rng, (
        f"{co} appoints {name} as chief financial officer",
        f"{name} will join {poss(co)} management team on 1 {pick(rng, ('March', 'June', 'September'))}.",
        f"{poss(co)} annual general meeting will be held on {rng.randint(2, 28)} April in {pick(rng, ('Helsinki', 'Stockholm', 'Oslo', 'London'))}.",
        "The new shares have been registered in the trade register and trading begins tomorrow.",
        f"{co} is headquartered in {pick(rng, ('Espoo', 'Gothenburg', 'Aarhus', 'Leeds', 'Tampere'))} and listed on the main market.",
        f"{co} launches a new line of {pick(rng, PRODUCTS)} for {mkt}",
        f"{co} and {other} signed a memorandum of understanding on cooperation in {mkt}.",
        f"{co} operates {rng.randint(3, 40)} production sites in {mkt}.",
        f"{co} holds {rng.randint(5, 60)} percent of the shares of {other}.",
        f"{co} will host a conference call for investors at 10 am.",
        f"{co} changes its reporting segments from the beginning of the year.",
        f"{co} ({pick(rng, TICKERS)}) shares were little changed in early trading.",
        f"The board proposes a dividend of EUR {round(rng.uniform(0.1, 2), 2)} per share.",
        f"{co} is moving its headquarters to a new office in the same city.",
    ))  # fmt: skip


def events(rng: R) -> Row:
    co, mkt = pick(rng, COMPANIES), pick(rng, MARKETS)
    pos = (
        f"{co} receives regulatory approval for its new {pick(rng, ('drug', 'vaccine', 'device'))}",
        f"{co} raises its dividend by {pct(rng)} and announces a share buyback",
        f"{co} sets a new sales record in {mkt}",
        f"{co} gained market share in {mkt} thanks to strong demand for its {pick(rng, PRODUCTS)}.",
        f"{co} shares rally after strong {pick(rng, ('quarterly', 'half-year', 'full-year'))} figures",
        f"Demand for {poss(co)} {pick(rng, PRODUCTS)} remained strong, lifting margins.",
        f"{co} completed the project ahead of schedule and under budget.",
        f"Lower energy costs improved {poss(co)} profitability.",
    )
    neg = (
        f"{co} recalls {pick(rng, PRODUCTS)} over safety defect",
        f"{co} fined {amounts(rng, True)[0]} by competition authority",
        f"{co} suspends its dividend as losses mount",
        f"Strike halts production at {poss(co)} plant in {mkt}",
        f"{co} shares slump after auditors raise going-concern doubts",
        f"{co} delays the launch of its {pick(rng, PRODUCTS)} again, citing supplier problems.",
        f"Weak demand in {mkt} weighed on {poss(co)} results.",
        f"{co} files for bankruptcy protection",
        f"Higher raw material prices squeezed {poss(co)} margins.",
    )
    return ("positive", pick(rng, pos)) if rng.random() < 0.5 else ("negative", pick(rng, neg))


def mixed(rng: R) -> Row:
    """Two clauses pulling in opposite directions: the main clause gives the label."""
    co, m1, m2 = pick(rng, COMPANIES), pick(rng, GOOD[:6]), pick(rng, GOOD[6:12])
    form = rng.randrange(6)
    if form == 0:
        return "positive", f"Despite weaker {m2}, {poss(co)} {m1} {pick(rng, UP)} in {pick(rng, PERIODS)}."
    if form == 1:
        return "negative", f"Although {m2} {pick(rng, UP)}, {poss(co)} {m1} {pick(rng, DOWN)}."
    if form == 2:
        return (
            "negative",
            f"{poss(co)} {m1} {pick(rng, UP)}, but {m2} {pick(rng, DOWN)} sharply and the outlook was cut.",
        )
    if form == 3:
        return (
            "positive",
            f"{poss(co)} {m1} {pick(rng, DOWN)} slightly, but {m2} {pick(rng, UP)} strongly and the company raised its forecast.",
        )
    if form == 4:
        return (
            "neutral",
            f"{co} said demand {pick(rng, ('could improve', 'may weaken', 'might stabilise'))} later in the year, but visibility remains limited.",
        )
    return "neutral", f"Increases in {m1} were offset by declines in {m2}, leaving results unchanged."


FRAMES: list[tuple[Frame, int]] = [
    (metric_change, 16), (metric_compare, 14), (loss_profit_swing, 8), (flat_and_absolute, 12),
    (estimates, 6), (guidance, 9), (orders, 7), (jobs, 7), (deals, 6), (ratings, 7),
    (charged_neutral, 10), (corporate_neutral, 14), (events, 8), (mixed, 6),
]  # fmt: skip
