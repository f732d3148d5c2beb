"""Generate the replay dataset shipped in ``data/`` (seeded, deterministic; its output is committed).

    python -m rtfin_cli.local.market.generate      # rewrites data/tickers.tsv and data/news.jsonl.gz

Every headline and description is written from this module's templates for this project. Each article
carries the sentiment ``label`` it was written with (positive / negative / neutral), so the sentiment model
can be evaluated end to end against the replayed news.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

DATA = Path(__file__).resolve().parent / "data"
SEED = 20250106
START = datetime(2025, 1, 6, tzinfo=UTC)  # a Monday; the dataset spans 14 days
DAYS = 14
N_ARTICLES = 5200
LABEL_WEIGHTS = {"positive": 0.37, "negative": 0.33, "neutral": 0.30}

# symbol, company, sector, base price, daily volatility (%), average daily volume (millions)
TICKERS: list[tuple[str, str, str, float, float, float]] = [
    ("AAPL", "Apple Inc.", "Technology", 236.0, 1.4, 48.0),
    ("MSFT", "Microsoft Corp.", "Technology", 424.0, 1.3, 21.0),
    ("NVDA", "NVIDIA Corp.", "Technology", 138.0, 3.1, 240.0),
    ("AVGO", "Broadcom Inc.", "Technology", 228.0, 2.6, 30.0),
    ("ORCL", "Oracle Corp.", "Technology", 168.0, 1.9, 9.0),
    ("CRM", "Salesforce Inc.", "Technology", 331.0, 1.8, 6.0),
    ("ADBE", "Adobe Inc.", "Technology", 432.0, 1.7, 3.5),
    ("AMD", "Advanced Micro Devices Inc.", "Technology", 124.0, 2.9, 38.0),
    ("INTC", "Intel Corp.", "Technology", 19.8, 2.7, 70.0),
    ("QCOM", "Qualcomm Inc.", "Technology", 158.0, 2.0, 8.0),
    ("TXN", "Texas Instruments Inc.", "Technology", 189.0, 1.5, 6.0),
    ("CSCO", "Cisco Systems Inc.", "Technology", 59.5, 1.1, 18.0),
    ("IBM", "International Business Machines Corp.", "Technology", 221.0, 1.3, 4.0),
    ("NOW", "ServiceNow Inc.", "Technology", 1045.0, 2.0, 1.3),
    ("INTU", "Intuit Inc.", "Technology", 628.0, 1.7, 1.6),
    ("MU", "Micron Technology Inc.", "Technology", 97.0, 3.0, 22.0),
    ("AMAT", "Applied Materials Inc.", "Technology", 171.0, 2.3, 6.5),
    ("PLTR", "Palantir Technologies Inc.", "Technology", 72.0, 4.0, 85.0),
    ("SNOW", "Snowflake Inc.", "Technology", 168.0, 3.0, 4.5),
    ("SHOP", "Shopify Inc.", "Technology", 107.0, 2.9, 8.0),
    ("GOOGL", "Alphabet Inc.", "Communication Services", 192.0, 1.6, 26.0),
    ("META", "Meta Platforms Inc.", "Communication Services", 612.0, 1.9, 12.0),
    ("NFLX", "Netflix Inc.", "Communication Services", 858.0, 2.0, 3.0),
    ("DIS", "The Walt Disney Co.", "Communication Services", 111.0, 1.3, 8.0),
    ("CMCSA", "Comcast Corp.", "Communication Services", 37.6, 1.2, 20.0),
    ("T", "AT&T Inc.", "Communication Services", 22.4, 1.0, 34.0),
    ("VZ", "Verizon Communications Inc.", "Communication Services", 39.5, 0.9, 18.0),
    ("TMUS", "T-Mobile US Inc.", "Communication Services", 219.0, 1.1, 3.5),
    ("SPOT", "Spotify Technology S.A.", "Communication Services", 458.0, 2.4, 1.8),
    ("AMZN", "Amazon.com Inc.", "Consumer Discretionary", 220.0, 1.7, 35.0),
    ("TSLA", "Tesla Inc.", "Consumer Discretionary", 410.0, 3.8, 95.0),
    ("HD", "The Home Depot Inc.", "Consumer Discretionary", 395.0, 1.2, 3.2),
    ("MCD", "McDonald's Corp.", "Consumer Discretionary", 289.0, 0.9, 3.0),
    ("NKE", "Nike Inc.", "Consumer Discretionary", 75.0, 1.6, 11.0),
    ("SBUX", "Starbucks Corp.", "Consumer Discretionary", 93.0, 1.4, 8.0),
    ("LOW", "Lowe's Cos. Inc.", "Consumer Discretionary", 258.0, 1.2, 2.5),
    ("BKNG", "Booking Holdings Inc.", "Consumer Discretionary", 4810.0, 1.6, 0.3),
    ("GM", "General Motors Co.", "Consumer Discretionary", 52.0, 1.7, 10.0),
    ("F", "Ford Motor Co.", "Consumer Discretionary", 10.1, 1.8, 55.0),
    ("ABNB", "Airbnb Inc.", "Consumer Discretionary", 133.0, 2.3, 5.0),
    ("WMT", "Walmart Inc.", "Consumer Staples", 91.0, 0.9, 15.0),
    ("COST", "Costco Wholesale Corp.", "Consumer Staples", 925.0, 1.0, 2.0),
    ("PG", "The Procter & Gamble Co.", "Consumer Staples", 165.0, 0.8, 6.5),
    ("KO", "The Coca-Cola Co.", "Consumer Staples", 62.5, 0.7, 13.0),
    ("PEP", "PepsiCo Inc.", "Consumer Staples", 151.0, 0.8, 6.0),
    ("MDLZ", "Mondelez International Inc.", "Consumer Staples", 59.0, 0.9, 8.0),
    ("CL", "Colgate-Palmolive Co.", "Consumer Staples", 90.0, 0.8, 4.5),
    ("KHC", "The Kraft Heinz Co.", "Consumer Staples", 30.5, 1.0, 9.0),
    ("JPM", "JPMorgan Chase & Co.", "Financials", 242.0, 1.2, 9.0),
    ("BAC", "Bank of America Corp.", "Financials", 44.5, 1.3, 35.0),
    ("WFC", "Wells Fargo & Co.", "Financials", 71.0, 1.4, 16.0),
    ("GS", "The Goldman Sachs Group Inc.", "Financials", 578.0, 1.5, 2.2),
    ("MS", "Morgan Stanley", "Financials", 127.0, 1.4, 6.0),
    ("C", "Citigroup Inc.", "Financials", 71.5, 1.5, 14.0),
    ("BLK", "BlackRock Inc.", "Financials", 1012.0, 1.3, 0.7),
    ("SCHW", "The Charles Schwab Corp.", "Financials", 74.0, 1.5, 8.0),
    ("AXP", "American Express Co.", "Financials", 299.0, 1.3, 2.8),
    ("V", "Visa Inc.", "Financials", 316.0, 1.0, 6.0),
    ("MA", "Mastercard Inc.", "Financials", 527.0, 1.0, 2.5),
    ("PYPL", "PayPal Holdings Inc.", "Financials", 86.0, 2.0, 12.0),
    ("BRK.B", "Berkshire Hathaway Inc. Class B", "Financials", 454.0, 0.8, 3.5),
    ("UNH", "UnitedHealth Group Inc.", "Health Care", 508.0, 1.4, 4.0),
    ("JNJ", "Johnson & Johnson", "Health Care", 144.0, 0.8, 7.5),
    ("LLY", "Eli Lilly and Co.", "Health Care", 772.0, 2.0, 3.5),
    ("PFE", "Pfizer Inc.", "Health Care", 26.4, 1.2, 38.0),
    ("MRK", "Merck & Co. Inc.", "Health Care", 99.0, 1.1, 9.0),
    ("ABBV", "AbbVie Inc.", "Health Care", 176.0, 1.2, 6.0),
    ("TMO", "Thermo Fisher Scientific Inc.", "Health Care", 521.0, 1.3, 1.8),
    ("ABT", "Abbott Laboratories", "Health Care", 113.0, 1.0, 5.5),
    ("AMGN", "Amgen Inc.", "Health Care", 262.0, 1.3, 2.8),
    ("GILD", "Gilead Sciences Inc.", "Health Care", 92.0, 1.3, 7.0),
    ("ISRG", "Intuitive Surgical Inc.", "Health Care", 522.0, 1.6, 1.5),
    ("MRNA", "Moderna Inc.", "Health Care", 41.0, 3.5, 10.0),
    ("XOM", "Exxon Mobil Corp.", "Energy", 107.0, 1.2, 15.0),
    ("CVX", "Chevron Corp.", "Energy", 145.0, 1.2, 8.0),
    ("COP", "ConocoPhillips", "Energy", 99.0, 1.6, 7.0),
    ("SLB", "Schlumberger Ltd.", "Energy", 38.4, 1.8, 12.0),
    ("OXY", "Occidental Petroleum Corp.", "Energy", 47.0, 1.8, 10.0),
    ("EOG", "EOG Resources Inc.", "Energy", 123.0, 1.5, 3.0),
    ("CAT", "Caterpillar Inc.", "Industrials", 363.0, 1.5, 2.5),
    ("BA", "The Boeing Co.", "Industrials", 171.0, 2.1, 8.0),
    ("GE", "GE Aerospace", "Industrials", 168.0, 1.6, 5.5),
    ("HON", "Honeywell International Inc.", "Industrials", 226.0, 1.0, 3.5),
    ("UPS", "United Parcel Service Inc.", "Industrials", 127.0, 1.4, 4.5),
    ("RTX", "RTX Corp.", "Industrials", 116.0, 1.1, 5.0),
    ("LMT", "Lockheed Martin Corp.", "Industrials", 487.0, 1.0, 1.3),
    ("DE", "Deere & Co.", "Industrials", 428.0, 1.4, 1.6),
    ("UBER", "Uber Technologies Inc.", "Industrials", 63.0, 2.4, 20.0),
    ("DAL", "Delta Air Lines Inc.", "Industrials", 62.0, 2.0, 9.0),
    ("NEE", "NextEra Energy Inc.", "Utilities", 71.0, 1.3, 10.0),
    ("DUK", "Duke Energy Corp.", "Utilities", 107.0, 0.9, 3.5),
    ("SO", "The Southern Co.", "Utilities", 82.0, 0.9, 4.5),
    ("LIN", "Linde plc", "Materials", 418.0, 1.0, 2.0),
    ("FCX", "Freeport-McMoRan Inc.", "Materials", 38.0, 2.3, 14.0),
    ("NEM", "Newmont Corp.", "Materials", 38.5, 2.1, 11.0),
    ("DOW", "Dow Inc.", "Materials", 40.0, 1.6, 8.0),
    ("PLD", "Prologis Inc.", "Real Estate", 105.0, 1.3, 4.0),
    ("AMT", "American Tower Corp.", "Real Estate", 183.0, 1.3, 2.5),
    ("EQIX", "Equinix Inc.", "Real Estate", 930.0, 1.3, 0.6),
    ("O", "Realty Income Corp.", "Real Estate", 53.0, 1.0, 5.5),
]

PRODUCTS = {
    "Technology": [
        "cloud platform",
        "AI accelerator",
        "data-center chips",
        "enterprise software suite",
        "developer tools",
        "security software",
        "networking gear",
        "analytics platform",
    ],
    "Communication Services": [
        "streaming service",
        "advertising business",
        "wireless network",
        "subscriber base",
        "content slate",
        "broadband offering",
    ],
    "Consumer Discretionary": [
        "electric vehicle lineup",
        "holiday collection",
        "online marketplace",
        "store remodel program",
        "loyalty program",
        "travel bookings",
    ],
    "Consumer Staples": [
        "snack portfolio",
        "beverage lineup",
        "private-label range",
        "household brands",
        "membership business",
        "grocery delivery",
    ],
    "Financials": [
        "investment banking unit",
        "card business",
        "wealth management arm",
        "trading desk",
        "consumer lending book",
        "payments network",
    ],
    "Health Care": [
        "obesity drug",
        "oncology pipeline",
        "vaccine program",
        "medical device line",
        "late-stage trial",
        "diagnostics business",
    ],
    "Energy": [
        "Permian output",
        "LNG project",
        "refining margins",
        "offshore drilling program",
        "carbon capture venture",
        "shale production",
    ],
    "Industrials": [
        "jet engine orders",
        "freight volumes",
        "defense backlog",
        "equipment sales",
        "aircraft deliveries",
        "ride-hailing network",
    ],
    "Utilities": [
        "renewables pipeline",
        "grid investment plan",
        "rate case",
        "nuclear fleet",
        "solar buildout",
    ],
    "Materials": [
        "copper output",
        "gold production",
        "industrial gases contracts",
        "chemicals volumes",
        "mine expansion",
    ],
    "Real Estate": [
        "warehouse portfolio",
        "tower leasing",
        "data-center campus",
        "net-lease portfolio",
        "occupancy rates",
    ],
}

POSITIVE_TITLES = [
    "{company} Beats Quarterly Estimates as {product} Demand Surges",
    "{company} Raises Full-Year Guidance After Strong {quarter}",
    "{ticker} Shares Jump {pct}% on Record Revenue",
    "{company} Announces ${amount} Billion Share Buyback",
    "Analysts Upgrade {company} to Buy, Citing {product} Momentum",
    "{company} Lifts Dividend by {pct}% on Robust Cash Flow",
    "{company} Wins Major Contract Expanding Its {product}",
    "{ticker} Rallies After Upbeat Outlook for {product}",
    "{company} Margins Expand as Cost Program Pays Off",
    "{company} Stock Hits All-Time High on Strong Earnings",
    "{company} Reports Better-Than-Expected Profit, Shares Climb",
    "Regulators Approve {company}'s {product}, Opening a Large Market",
    "{company} Signs Multi-Year Partnership With {peer}",
    "{company} Sees Accelerating Growth in {product}",
    "{ticker} Gains as Price Target Raised to ${price}",
    "{company} Posts Record Orders; Backlog Swells {pct}%",
    "Strong Holiday Sales Lift {company} Above Forecasts",
    "{company} Delivers Blowout {quarter} and Upbeat Forecast",
    "Investors Cheer {company}'s Plan to Expand {product}",
    "{company} Turns Profitable Ahead of Schedule",
    "{company} Outperforms Peers as {product} Sales Soar",
    "{ticker} Surges After {company} Unveils Next-Generation {product}",
]
NEGATIVE_TITLES = [
    "{company} Misses Earnings Estimates, Shares Slide {pct}%",
    "{company} Cuts Outlook as {product} Demand Weakens",
    "{ticker} Falls After Downgrade to Sell",
    "{company} Faces Regulatory Probe Over {product}",
    "{company} to Lay Off {count} Workers Amid Slowing Sales",
    "{ticker} Tumbles as Margins Shrink in {quarter}",
    "{company} Recalls Products, Warns of ${amount} Billion Charge",
    "{company} Loses Key Customer to {peer}",
    "{company} Suspends Dividend After Disappointing Results",
    "Lawsuit Against {company} Over {product} Weighs on Shares",
    "{company} Shares Plunge on Weak Guidance",
    "{company} Reports Surprise Loss as Costs Balloon",
    "{ticker} Drops as CEO Departs Unexpectedly",
    "{company} Delays Launch of {product}, Stock Sinks",
    "Analysts Slash {company} Price Target to ${price}",
    "{company} Warns Supply Problems Will Hurt {quarter} Sales",
    "{company} Stock Hits 52-Week Low as Growth Stalls",
    "Data Breach at {company} Raises Concerns About {product}",
    "{company} Misses Revenue Forecast as Competition From {peer} Intensifies",
    "{company} Writes Down ${amount} Billion on Struggling {product}",
    "{ticker} Sinks {pct}% After Trial Setback",
    "Short Seller Targets {company}, Alleging Weak {product} Sales",
]
NEUTRAL_TITLES = [
    "{company} to Report {quarter} Results on {weekday}",
    "{company} Schedules Investor Day for Next Month",
    "{company} Names New Chief Financial Officer",
    "{ticker} Shares Trade Flat Ahead of Fed Decision",
    "{company} Completes Previously Announced Reorganization",
    "What to Watch When {company} Reports Earnings",
    "{company} Declares Regular Quarterly Dividend",
    "{company} to Present at Industry Conference",
    "{company} Files Annual Report With the SEC",
    "{company} Holds Annual Shareholder Meeting",
    "{ticker} Options Activity: A Look at Open Interest",
    "{company} Appoints Two Independent Directors",
    "How {company} Fits Into a Sector Portfolio",
    "{company} Updates Investors on {product} Timeline",
    "{company} and {peer}: Comparing Valuations",
    "{company} Relocates Regional Office",
    "{company} Maintains Guidance, Reaffirms Targets",
    "Index Rebalance to Include Changes for {ticker}",
    "{company} Prices Senior Notes Offering",
    "{company} to Webcast Conference Call",
    "{ticker} Stock: Key Levels Traders Are Watching",
    "{company} Publishes Annual Sustainability Report",
]
DESCRIPTIONS = {
    "positive": [
        "{company} ({ticker}) reported results ahead of Wall Street expectations, driven by strong demand "
        "for its {product}. Management raised its outlook for the rest of the year.",
        "Shares of {company} rose after the company said growth in its {product} accelerated, with "
        "revenue up {pct}% from a year earlier.",
        "{company} said profitability improved across its businesses, and analysts lifted price targets "
        "citing sustained momentum in {product}.",
        "Investors welcomed {company}'s announcement, which signals confidence in cash flow and "
        "long-term growth of its {product}.",
    ],
    "negative": [
        "{company} ({ticker}) fell short of analyst expectations as demand for its {product} weakened "
        "and costs rose. The company lowered its full-year forecast.",
        "Shares of {company} dropped after the company disclosed problems with its {product}, raising "
        "concerns about revenue over the coming quarters.",
        "{company} warned of pressure on margins, and several analysts cut their ratings, pointing to "
        "rising competition and slowing growth in {product}.",
        "The setback adds to a difficult stretch for {company}, whose shares have declined {pct}% "
        "over the past month.",
    ],
    "neutral": [
        "{company} ({ticker}) said the event will be held as planned; the company did not provide "
        "further details about its {product}.",
        "{company} announced the routine update in a filing. Shares of {ticker} were little changed "
        "in early trading.",
        "The announcement from {company} was in line with prior guidance. Analysts said they expect "
        "no change to estimates for {product}.",
        "{company} confirmed the schedule in a press release; a webcast will be available on its "
        "investor relations website.",
    ],
}
KEYWORDS = {
    "positive": ["earnings", "growth", "upgrade", "guidance", "buyback", "dividend"],
    "negative": ["earnings", "downgrade", "layoffs", "lawsuit", "guidance", "recall"],
    "neutral": ["corporate", "dividend", "conference", "filing", "management", "schedule"],
}
PUBLISHERS = [
    ("Market Ledger", "https://marketledger.example"),
    ("Street Pulse", "https://streetpulse.example"),
    ("Capital Wire", "https://capitalwire.example"),
    ("The Trading Desk", "https://tradingdesk.example"),
    ("Ticker Daily", "https://tickerdaily.example"),
    ("Finance Beacon", "https://financebeacon.example"),
    ("Equity Insight", "https://equityinsight.example"),
    ("Sector Watch", "https://sectorwatch.example"),
]
AUTHORS = [
    "Dana Whitfield",
    "Marco Ruiz",
    "Priya Natarajan",
    "Tom Becker",
    "Lena Osei",
    "Hiro Tanaka",
    "Staff Writer",
    "Editorial Team",
    "Sam Adeyemi",
    "Claire Dubois",
]
WEEKDAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday"]


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
    out: list[dict[str, object]] = []
    last_time: datetime | None = None
    for i in range(N_ARTICLES):
        label = rng.choices(labels, weights)[0]
        sym, company, sector, price, _, _ = rng.choices(TICKERS, pop)[0]
        peer = rng.choice([t for t in TICKERS if t[2] == sector and t[0] != sym])
        fields = {
            "company": company,
            "ticker": sym,
            "product": rng.choice(PRODUCTS[sector]),
            "peer": peer[1],
            "pct": rng.choice([2, 3, 4, 5, 6, 7, 8, 9, 10, 12, 15, 18, 20, 25]),
            "quarter": rng.choice(["Fourth Quarter", "Q4", "Holiday Quarter", "First Quarter"]),
            "amount": rng.choice([1, 2, 3, 5, 7, 10, 15, 20]),
            "count": rng.choice([800, 1200, 2500, 4000, 6000]),
            "price": round(price * rng.uniform(0.7, 1.35)),
            "weekday": rng.choice(WEEKDAYS),
        }
        template = rng.choice(titles[label])
        title = template.format(**fields)
        description = rng.choice(DESCRIPTIONS[label]).format(**fields)
        tickers = [sym] + ([peer[0]] if "{peer}" in template or rng.random() < 0.12 else [])
        # wire bursts: some articles share the exact second of the previous one
        published = last_time if last_time is not None and rng.random() < 0.08 else _publish_time(rng)
        last_time = published
        publisher, home = rng.choice(PUBLISHERS)
        art_id = hashlib.sha256(f"{seed}:{i}:{title}".encode()).hexdigest()
        slug = _slug(title)
        out.append(
            {
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
                "label": label,
            }
        )
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
