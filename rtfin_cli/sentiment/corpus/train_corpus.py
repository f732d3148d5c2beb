"""Training-side sentence generator: company releases, wire-news sentences and headlines.

Labels follow what the sentence says for the company's investors: a good figure going up or a bad
one (loss, costs, debt) going down is positive, and the reverse negative, whatever the verb
("rose", "from ... to", "compared with", "narrowed", "(previous year)"); unchanged figures,
figures without a comparison and plain corporate facts are neutral, also when they contain charged
words ("loss prevention", "exempted"); in mixed sentences the main clause decides ("despite ...").
"""

from __future__ import annotations

from rtfin_cli.sentiment.corpus import Frame, Row
from rtfin_cli.sentiment.corpus.train_figures import (
    flat_and_absolute,
    loss_profit_swing,
    metric_change,
    metric_compare,
)
from rtfin_cli.sentiment.corpus.train_words import (
    ANALYSTS,
    COMPANIES,
    CUSTOMERS,
    DOWN,
    GOOD,
    MARKETS,
    PERIODS,
    PRODUCTS,
    TICKERS,
    UP,
    R,
    amounts,
    pct,
    pick,
    poss,
)


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
