"""Held-out sentence generator, written apart from ``train_corpus``: other templates, other verbs and
metric names, other companies, currencies written with symbols, "from X to Y" orderings, tables and
colons. The labelling rules are the same (see ``train_corpus``); nothing here is trained on.
"""

from __future__ import annotations

import random

from rtfin_cli.sentiment.corpus import Frame, Row

R = random.Random
FIRMS = (
    "Tavira Holdings", "Nordhavn Marine", "Kilmore Brewing", "Rothwell Aerospace", "Sundsvik Cement",
    "Verano Foods", "Oxley Pharmaceuticals", "Brightwater Telecom", "Cresswell Bank", "Maple Ridge Metals",
    "Halstein Chemicals", "Pinecrest Homes", "Vantor Electronics", "Skarholt Fisheries", "Amberly Retail",
    "Torvald Timber", "Lisburn Rail", "Greyfield Insurance", "Oranmore Pharma", "Bexhill Logistics",
    "Solvang Energy", "Rydal Instruments", "Ketterick Mills", "Marlow Gaming", "Uddeholt Tools",
)  # fmt: skip
MONEY = (("€", " million"), ("$", "m"), ("£", "bn"), ("NOK ", " million"), ("CHF ", "m"), ("€", "m"))
WHEN = (
    "Q1", "Q2", "Q3", "Q4", "H1", "the three months to June", "the quarter ended September 30", "fiscal 2024",
    "the full year 2023", "the latest quarter", "the six months to December", "the period under review",
)  # fmt: skip
AGO = ("a year ago", "in the prior-year quarter", "twelve months earlier", "last year")
PLUS = ("turnover", "sales", "pre-tax profit", "operating income", "net income", "underlying profit", "EBITA",
        "new orders", "bookings", "same-store sales", "free cash flow", "operating result", "premiums written",
        "assets under management", "recurring revenue", "group sales", "operating earnings")  # fmt: skip
MINUS = (
    "losses",
    "operating expenses",
    "borrowings",
    "write-downs",
    "bad-loan provisions",
    "loss before tax",
    "overheads",
)
RISE = (
    "soared",
    "more than doubled",
    "edged up",
    "rebounded",
    "gained",
    "expanded",
    "picked up",
    "was up",
    "rocketed",
)
SINK = (
    "tumbled",
    "plunged",
    "halved",
    "eased",
    "shrank",
    "sank",
    "was down",
    "retreated",
    "edged down",
    "slid",
)
PLACES = ("Spain", "Brazil", "the US", "Scandinavia", "Central Europe", "India", "France", "Canada")
GOODS = ("ferries", "cement", "lager", "jet engine parts", "smart meters", "timber frames", "trawlers",
         "hospital beds", "power cables", "signalling systems")  # fmt: skip
BROKERS = ("Carrow Bank", "Hesketh Partners", "Lindqvist Equities", "Norbury Markets")


def firm(rng: R) -> str:
    return rng.choice(FIRMS)


def whose(name: str) -> str:
    return name + ("'" if name[-1] == "s" else "'s")


def money_pair(rng: R, higher: bool) -> tuple[str, str]:
    """(now, before) with the currency symbol first; ``now`` is the larger one when ``higher``."""
    sym, unit = rng.choice(MONEY)
    before = rng.randint(12, 9000) / 10
    now = before * rng.uniform(1.05, 2.5) if higher else before / rng.uniform(1.05, 2.5)
    return f"{sym}{now:.1f}{unit}", f"{sym}{before:.1f}{unit}"


def change(rng: R) -> str:
    return f"{rng.randint(3, 70)} percent" if rng.random() < 0.5 else f"{rng.randint(3, 70)}%"


def moved(rng: R) -> Row:
    """A figure moves; the wording, the order of the amounts or both show the direction."""
    plus, higher = rng.random() < 0.7, rng.random() < 0.5
    what = rng.choice(PLUS if plus else MINUS)
    now, before = money_pair(rng, higher)
    name, when = firm(rng), rng.choice(WHEN)
    label = "positive" if plus == higher else "negative"
    k = rng.randrange(8)
    if k == 0:
        return label, f"For {when}, {name} posted {what} of {now}, against {before} {rng.choice(AGO)}."
    if k == 1:
        return label, f"{what} in {when}: {now} (prev. {before})"
    if k == 2:
        return label, f"{name}: {when} {what} {now} vs {before}"
    if k == 3:
        return label, f"{what} went from {before} to {now} in {when}."
    if k == 4:
        word = "higher" if higher else "lower"
        return label, f"At {now}, {whose(name)} {what} was {change(rng)} {word} than {rng.choice(AGO)}."
    if k == 5:
        return label, f"{whose(name)} {what} {rng.choice(RISE if higher else SINK)} to {now} in {when}"
    if k == 6:
        word = "up" if higher else "down"
        return label, f"{what} stood at {now}, {word} {change(rng)} on the year."
    verb = "lifted" if higher else "saw a drop in"
    return label, f"{name} {verb} {what} to {now} in {when}, from {before}."


def red_black(rng: R) -> Row:
    """Losses shrinking or deepening, moving into or out of the red, negative cash flow."""
    name, when = firm(rng), rng.choice(WHEN)
    small, big = money_pair(rng, False)
    k = rng.randrange(8)
    if k == 0:
        return "positive", f"{name} trimmed its quarterly loss to {small}, from {big}."
    if k == 1:
        return "negative", f"{whose(name)} loss deepened to {big} in {when} from {small}."
    if k == 2:
        return "positive", f"The loss was reduced from {big} to {small}."
    if k == 3:
        return "positive", f"{name} moved into the black in {when} with a profit of {small}"
    if k == 4:
        return (
            "negative",
            f"{name} slipped into the red, posting a loss of {small} after a profit of {big} {rng.choice(AGO)}.",
        )
    if k == 5:
        return (
            "negative",
            f"Free cash flow turned negative at -{small[1:] if small[0] in '€$£' else small}, from {big}.",
        )
    if k == 6:
        return "negative", f"Loss before tax: {big} (loss of {small} {rng.choice(AGO)})"
    return "positive", f"{name} cut its net loss by more than half in {when}."


def steady(rng: R) -> Row:
    what, name, when = rng.choice(PLUS + MINUS), firm(rng), rng.choice(WHEN)
    now, _ = money_pair(rng, True)
    return "neutral", rng.choice((
        f"{what} held steady at {now} in {when}.",
        f"{whose(name)} {what} of {now} matched the year-earlier figure.",
        f"{name} booked {what} of {now} for {when}.",
        f"{name} is due to report {when} figures next Thursday.",
        "All figures in this release are in accordance with IFRS unless otherwise stated.",
        f"{what} was essentially unchanged year on year.",
        f"{name} reports {what} of {now}, matching consensus",
    ))  # fmt: skip


def versus_street(rng: R) -> Row:
    name = firm(rng)
    good = rng.random() < 0.5
    if rng.random() < 0.15:
        return "neutral", f"{whose(name)} figures were broadly as analysts had forecast."
    if good:
        return "positive", rng.choice((
            f"{name} topped Wall Street estimates on both revenue and earnings.",
            f"{whose(name)} results came in ahead of consensus",
            f"{name} delivers earnings surprise as {rng.choice(GOODS)} demand holds up",
            f"Profit at {name} was well above what analysts had pencilled in.",
        ))  # fmt: skip
    return "negative", rng.choice((
        f"{whose(name)} results fell short of what analysts had pencilled in.",
        f"{name} underwhelms with {rng.choice(WHEN)} profit below forecasts",
        f"{name} earnings disappoint the market",
        f"Revenue at {name} trailed the consensus forecast.",
    ))  # fmt: skip


def outlook(rng: R) -> Row:
    name, year = firm(rng), rng.choice(("2025", "this year", "next year", "fiscal 2025"))
    k = rng.randrange(8)
    if k == 0:
        return "positive", f"{name} boosts its annual forecast after a strong {rng.choice(WHEN)}"
    if k == 1:
        return (
            "negative",
            f"{name} trims its {year} outlook, blaming {rng.choice(('a slowdown in ' + rng.choice(PLACES), 'currency headwinds', 'weak pricing'))}.",
        )
    if k == 2:
        return "neutral", f"{name} sticks to its targets for {year}."
    if k == 3:
        return (
            "positive",
            f"{name} sees {year} sales growth of {rng.randint(4, 9)}-{rng.randint(10, 15)} percent.",
        )
    if k == 4:
        return "negative", f"{name} anticipates lower profitability in {year}."
    if k == 5:
        return "neutral", f"{name} forecasts stable sales in {year}."
    if k == 6:
        return (
            "negative",
            f"Earnings in {year} are likely to come in below the earlier guidance, {name} said.",
        )
    return "positive", f"Management now expects {year} operating income to exceed its previous estimate."


def contracts(rng: R) -> Row:
    name, val = firm(rng), money_pair(rng, True)[0]
    item, place = rng.choice(GOODS), rng.choice(PLACES)
    k = rng.randrange(6)
    if k == 0:
        return "positive", f"{name} lands {val} deal to supply {item} in {place}"
    if k == 1:
        return "positive", f"{name} has been awarded a contract for {item} worth about {val}."
    if k == 2:
        return "negative", f"A {val} order for {item} placed with {name} has been scrapped."
    if k == 3:
        return "negative", f"Key customer walks away from {whose(name)} {item} deal"
    if k == 4:
        return (
            "neutral",
            f"Deliveries of the {item} will take place in {rng.choice(('2025', '2026'))}, {name} said.",
        )
    return "positive", f"Orders for {whose(name)} {item} hit a record in {place}."


def staff(rng: R) -> Row:
    name, n, place = firm(rng), rng.choice([60, 150, 320, 700, 2500]), rng.choice(PLACES)
    k = rng.randrange(7)
    if k == 0:
        return "negative", f"{name} to shed {n} positions in {place}"
    if k == 1:
        return "negative", f"{name} announces {n} redundancies after orders dry up."
    if k == 2:
        return (
            "positive",
            f"The streamlining will trim annual costs by {money_pair(rng, True)[0]}, {name} said.",
        )
    if k == 3:
        return "positive", f"{name} plans to recruit {n} engineers to meet rising demand."
    if k == 4:
        return "neutral", f"{name} has a workforce of roughly {n * 4} in {place}."
    if k == 5:
        return "positive", f"Automation at the plant in {place} cut {whose(name)} production costs per unit."
    return "negative", f"{name} will shut its {place} factory, affecting {n} workers."


def takeovers(rng: R) -> Row:
    a, b = rng.sample(FIRMS, 2)
    val = money_pair(rng, True)[0]
    k = rng.randrange(7)
    if k == 0:
        return "neutral", f"{a} buys {b} in {val} deal"
    if k == 1:
        return "negative", f"Merger talks between {a} and {b} ended without agreement."
    if k == 2:
        return (
            "positive",
            f"The purchase of {b} is expected to be accretive to {whose(a)} earnings from the first year.",
        )
    if k == 3:
        return "neutral", f"{a} sells its {rng.choice(GOODS)} division to {b}"
    if k == 4:
        return "negative", f"Shareholders of {b} reject {whose(a)} offer as too low"
    if k == 5:
        return "neutral", "Closing of the deal is expected in the second half, pending regulatory clearance."
    return "positive", f"{b} stock soars on buyout offer from {a}"


def brokers(rng: R) -> Row:
    name, bank = firm(rng), rng.choice(BROKERS)
    k = rng.randrange(7)
    if k == 0:
        return "positive", f"{bank} lifts {name} to overweight"
    if k == 1:
        return "negative", f"{bank} cuts {name} to underweight on margin worries"
    if k == 2:
        return "neutral", f"{bank} keeps {name} at equal-weight."
    if k == 3:
        return "positive", f"{bank} raises its price objective for {name} to {rng.randint(10, 300)} crowns."
    if k == 4:
        return "negative", f"{bank} slashes its target for {name}, seeing little upside."
    if k == 5:
        return "neutral", f"{whose(name)} rating was affirmed at BBB with a stable outlook."
    return "negative", f"{whose(name)} debt rating was placed on review for a possible downgrade."


def loaded_words(rng: R) -> Row:
    """Neutral facts whose words sound like news."""
    name, place = firm(rng), rng.choice(PLACES)
    return "neutral", rng.choice((
        f"{name} supplies booms and skimmers for the oil spill response market.",
        f"{whose(name)} main product is a cancer screening test.",
        f"The group's bad-debt collection arm has {rng.randint(20, 90)} employees.",
        f"{name} moved out of its old head office in {rng.randint(2001, 2015)}.",
        "The plant produces explosives for the mining industry.",
        f"{whose(name)} drinks are exempt from the sugar tax because they contain no sugar.",
        f"{name} makes shock absorbers and brake pads for trucks.",
        f"{name} withdrew from {place} in the 1990s and sells only in Europe.",
        "The division handles claims from storm and flood damage.",
        f"{name} sells its products under the Crash and Burn brand.",
        "The unit repossesses and auctions vehicles for leasing companies.",
        "The new law on layoffs takes effect in January, the ministry said.",
        f"{name} operates a fleet of ice-breaking tugs.",
        f"{name} is not for sale, the founding family said in a statement.",
    ))  # fmt: skip


def routine(rng: R) -> Row:
    a, b, place = *rng.sample(FIRMS, 2), rng.choice(PLACES)
    person = rng.choice(("Maria Olsen", "Tomas Reid", "Elena Ruiz", "Henrik Dahl", "Grace Moore"))
    return "neutral", rng.choice((
        f"{a} names {person} chief executive",
        f"The meeting elected {person} as chairman of the board.",
        f"{whose(a)} capital markets day takes place in {rng.choice(('May', 'November'))}.",
        f"{a} has about {rng.randint(2, 40)},000 registered shareholders.",
        f"{a} lists a green bond on the exchange",
        "The interim report is available in English and Swedish.",
        f"{a} and {b} form a joint venture for {rng.choice(GOODS)} in {place}.",
        f"{a} opens a sales office in {place}",
        f"{a} shares traded flat at midday.",
        f"{a} will change its name to {b.split()[0]} Group from January.",
        f"Dividend of {rng.randint(5, 95)} cents per share to be paid on 14 May.",
    ))  # fmt: skip


def news(rng: R) -> Row:
    name, place = firm(rng), rng.choice(PLACES)
    if rng.random() < 0.5:
        return "positive", rng.choice((
            f"{name} wins patent case against rival",
            f"{name} secures fresh financing to fund expansion in {place}",
            f"{whose(name)} sales hit an all-time high",
            f"{name} doubles its dividend",
            f"Cheaper freight rates boosted {whose(name)} margins.",
            f"Investors cheer {whose(name)} turnaround plan",
        ))  # fmt: skip
    return "negative", rng.choice((
        f"{name} hit by data breach affecting customers",
        f"Investors sue {name} over misleading statements",
        f"Fire shuts {whose(name)} {place} plant",
        f"Regulator opens probe into {whose(name)} accounting",
        f"{name} chief quits amid bribery scandal",
        f"A production outage cut {whose(name)} output in {place}.",
        f"{name} shares sink to a ten-year low",
    ))  # fmt: skip


def two_sided(rng: R) -> Row:
    name, a, b = firm(rng), *rng.sample(PLUS[:10], 2)
    k = rng.randrange(6)
    if k == 0:
        return "positive", f"{whose(name)} {a} {rng.choice(RISE)}, more than offsetting softer {b}."
    if k == 1:
        return "negative", f"{a} was up, though {b} {rng.choice(SINK)} and margins narrowed."
    if k == 2:
        return "negative", f"Even though {a} improved, {name} swung to a loss on higher costs."
    if k == 3:
        return (
            "positive",
            f"While {b} dipped, {whose(name)} profit beat forecasts and it raised its dividend.",
        )
    if k == 4:
        return (
            "neutral",
            f"It is too early to say whether demand for {rng.choice(GOODS)} has bottomed out, {name} said.",
        )
    return "neutral", f"Growth in {a} was matched by a similar fall in {b}."


FRAMES: list[tuple[Frame, int]] = [
    (moved, 16), (red_black, 8), (steady, 11), (versus_street, 6), (outlook, 9), (contracts, 7),
    (staff, 7), (takeovers, 6), (brokers, 7), (loaded_words, 10), (routine, 13), (news, 8), (two_sided, 6),
]  # fmt: skip
