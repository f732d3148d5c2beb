"""The replay dataset: tickers and labelled news shipped in ``data/``, minute bars from a seeded random walk.

All times here are *dataset* times (January 2025, epoch ms UTC); the server shifts them so they look live.
"""

from __future__ import annotations

import gzip
import json
import math
import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache, lru_cache
from pathlib import Path
from typing import Any

DATA = Path(__file__).resolve().parent / "data"
SEED = 20250106
START = datetime(2025, 1, 6, tzinfo=UTC)
DAYS = 14
START_MS = int(START.timestamp() * 1000)
END_MS = START_MS + DAYS * 86_400_000
MINUTE_MS = 60_000
SESSION_OPEN_UTC_MIN = 14 * 60 + 30  # 09:30 New York (EST) = 14:30 UTC
SESSION_MINUTES = 390  # 09:30-16:00
LAP_MS = DAYS * 86_400_000  # a looping replay (skip_closed) repeats the dataset two weeks on: same weekdays


@dataclass(frozen=True)
class Ticker:
    symbol: str
    name: str
    sector: str
    base_price: float
    daily_vol_pct: float
    avg_volume_m: float


@cache
def tickers() -> tuple[Ticker, ...]:
    lines = (DATA / "tickers.tsv").read_text(encoding="utf-8").splitlines()[1:]
    out = []
    for line in lines:
        s, n, sec, p, v, m = line.split("\t")
        out.append(Ticker(s, n, sec, float(p), float(v), float(m)))
    return tuple(out)


@cache
def news() -> tuple[dict[str, Any], ...]:
    """Every article (Polygon fields + ``label``), ordered by (published_utc, id)."""
    with gzip.open(DATA / "news.jsonl.gz", "rt", encoding="utf-8") as fh:
        return tuple(json.loads(line) for line in fh)


def news_labels() -> dict[str, str]:
    """article id -> the sentiment label it was written with (for end-to-end model evaluation)."""
    return {str(a["id"]): str(a["label"]) for a in news()}


def parse_ms(text: str) -> int:
    return int(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() * 1000)


def iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@cache
def trading_days() -> tuple[int, ...]:
    """Session open (epoch ms) of every weekday in the dataset."""
    days = []
    for d in range(DAYS):
        day = START + timedelta(days=d)
        if day.weekday() < 5:
            days.append(int(day.timestamp() * 1000) + SESSION_OPEN_UTC_MIN * MINUTE_MS)
    return tuple(days)


def session_index(ms: int, loop: bool = False) -> tuple[int, int] | None:
    """(trading day index, minute index) of the minute bar starting at ``ms``, or None outside sessions;
    with ``loop``, of the dataset's bar that a later lap repeats."""
    if loop:
        ms = int(lap_split(ms)[1])
    for i, open_ms in enumerate(trading_days()):
        if open_ms <= ms < open_ms + SESSION_MINUTES * MINUTE_MS:
            return i, (ms - open_ms) // MINUTE_MS
    return None


def next_session_minute(ms: int, loop: bool = False) -> int | None:
    """Start of the first session minute at or after ``ms`` (minute-aligned), or None after the dataset;
    with ``loop``, the next lap's first open after the dataset (a looping replay never ends)."""
    if loop:
        lap, base = lap_split(ms)
        nxt = next_session_minute(int(base))
        return lap * LAP_MS + (nxt if nxt is not None else LAP_MS + trading_days()[0])
    ms = -(-ms // MINUTE_MS) * MINUTE_MS
    for open_ms in trading_days():
        close_ms = open_ms + SESSION_MINUTES * MINUTE_MS
        if ms < close_ms:
            return max(ms, open_ms)
    return None


def lap_session_ms() -> int:
    """Session time in one lap of the dataset (every trading day's session)."""
    return len(trading_days()) * SESSION_MINUTES * MINUTE_MS


def lap_split(ms: float) -> tuple[int, float]:
    """(lap, time within the dataset) of a looping replay's time: lap k replays the dataset LAP_MS later."""
    lap = max(0, int((ms - START_MS) // LAP_MS))
    return lap, ms - lap * LAP_MS


def session_time(ms: float) -> float:
    """Session (trading) time from the dataset start to ``ms``, over laps: the closed hours count nothing."""
    lap, base = lap_split(ms)
    return lap * lap_session_ms() + sum(
        min(max(base - o, 0.0), SESSION_MINUTES * MINUTE_MS) for o in trading_days()
    )


def session_ms_between(a_ms: float, b_ms: float) -> float:
    """Session time from ``a_ms`` to ``b_ms`` (negative when b is before a), over laps."""
    return session_time(b_ms) - session_time(a_ms)


def advance_sessions(ms: float, by_ms: float) -> float:
    """The time ``by_ms`` of session time after ``ms``, skipping the closed hours (a closed time counts from
    the next open) and, after the dataset's last session, going on with the next lap's first: the replay
    clock's ``skip_closed`` mode, so that at high speeds bars flow without gaps and never run out."""
    lap, base = lap_split(ms)
    for open_ms in trading_days():
        close_ms = open_ms + SESSION_MINUTES * MINUTE_MS
        if base >= close_ms:
            continue
        base = max(base, open_ms)
        if base + by_ms < close_ms:
            return lap * LAP_MS + base + by_ms
        by_ms -= close_ms - base
    whole, by_ms = divmod(by_ms, lap_session_ms())
    return advance_sessions((lap + 1 + whole) * LAP_MS + START_MS, by_ms)


@cache
def _daily_paths() -> dict[str, list[tuple[float, float]]]:
    """(open, close) of every ticker on every trading day: a random walk nudged by that day's news."""
    mood: dict[tuple[str, int], int] = {}
    opens = trading_days()
    for art in news():
        ms = parse_ms(str(art["published_utc"]))
        day = max((i for i, o in enumerate(opens) if o - 18 * 3_600_000 <= ms), default=0)
        sign = {"positive": 1, "negative": -1}.get(str(art["label"]), 0)
        for sym in art["tickers"]:
            mood[(sym, day)] = mood.get((sym, day), 0) + sign
    out = {}
    for t in tickers():
        rng = random.Random(f"{SEED}:{t.symbol}:daily")
        vol = t.daily_vol_pct / 100
        close = t.base_price
        days = []
        for d in range(len(opens)):
            drift = max(-2.0, min(2.0, 0.5 * mood.get((t.symbol, d), 0))) * vol
            open_ = close * math.exp(rng.gauss(0, vol * 0.25))
            close = open_ * math.exp(rng.gauss(drift, vol))
            days.append((open_, close))
        out[t.symbol] = days
    return out


def _r(x: float) -> float:
    return round(x, 4) if x < 1 else round(x, 2)


@lru_cache(maxsize=3)
def day_bars(day: int) -> tuple[tuple[dict[str, Any], ...], ...]:
    """Minute aggregates ("AM" events, dataset times) of every ticker for a trading day: [minute][ticker]."""
    open_ms = trading_days()[day]
    n = SESSION_MINUTES
    # U-shaped intraday volume: heavy at the open and the close, quiet at lunch
    shape = [1.0 + 3.0 * ((i / (n - 1)) * 2 - 1) ** 2 for i in range(n)]
    total = sum(shape)
    per_ticker: list[list[dict[str, Any]]] = []
    for t in tickers():
        rng = random.Random(f"{SEED}:{t.symbol}:{day}")
        day_open, day_close = _daily_paths()[t.symbol][day]
        sigma = t.daily_vol_pct / 100 / math.sqrt(n)
        walk = [0.0]
        for _ in range(n):
            walk.append(walk[-1] + rng.gauss(0, sigma))
        target = math.log(day_close / day_open)
        logp = [w - (i / n) * (walk[-1] - target) for i, w in enumerate(walk)]  # Brownian bridge
        day_volume = t.avg_volume_m * 1e6 * math.exp(rng.gauss(0, 0.2))
        av, pv, bars = 0, 0.0, []
        for i in range(n):
            o, c = day_open * math.exp(logp[i]), day_open * math.exp(logp[i + 1])
            h = max(o, c) * (1 + abs(rng.gauss(0, sigma * 0.6)))
            low = min(o, c) * (1 - abs(rng.gauss(0, sigma * 0.6)))
            v = max(100, int(day_volume * shape[i] / total * math.exp(rng.gauss(0, 0.35))))
            vw = (o + c + h + low) / 4
            av += v
            pv += vw * v
            s = open_ms + i * MINUTE_MS
            bars.append(
                {
                    "ev": "AM",
                    "sym": t.symbol,
                    "v": v,
                    "av": av,
                    "op": _r(day_open),
                    "vw": round(vw, 4),
                    "o": _r(o),
                    "c": _r(c),
                    "h": _r(h),
                    "l": _r(low),
                    "a": round(pv / av, 4),
                    "z": max(1, int(v / max(1, rng.randint(20, 400)))),
                    "s": s,
                    "e": s + MINUTE_MS,
                }
            )
        per_ticker.append(bars)
    return tuple(tuple(col[i] for col in per_ticker) for i in range(n))


def second_aggs(bar: dict[str, Any]) -> list[dict[str, Any]]:
    """The 60 per-second aggregates ("A" events) inside a minute bar, consistent with it."""
    rng = random.Random(f"{SEED}:{bar['sym']}:{bar['s']}:A")
    o, c, h, low = bar["o"], bar["c"], bar["h"], bar["l"]
    weights = [rng.random() + 0.1 for _ in range(60)]
    wsum = sum(weights)
    av0 = bar["av"] - bar["v"]
    out, prev, acc = [], o, 0
    for k in range(60):
        price = c if k == 59 else min(h, max(low, o + (c - o) * (k + 1) / 60 + rng.gauss(0, (h - low) / 8)))
        v = int(bar["v"] * weights[k] / wsum) if k < 59 else bar["v"] - acc
        acc += v
        s = bar["s"] + k * 1000
        out.append(
            {
                "ev": "A",
                "sym": bar["sym"],
                "v": v,
                "av": av0 + acc,
                "op": bar["op"],
                "vw": round((prev + price) / 2, 4),
                "o": _r(prev),
                "c": _r(price),
                "h": _r(max(prev, price)),
                "l": _r(min(prev, price)),
                "a": bar["a"],
                "z": max(1, v // 50),
                "s": s,
                "e": s + 1000,
            }
        )
        prev = price
    return out
