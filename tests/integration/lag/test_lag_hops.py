"""`rtfin lag --hops`: p50/p95 of each pipeline hop from the raw tables on the real local ClickHouse."""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest


def _tables(ch: Any) -> tuple[Any, Any]:
    from rtfin_cli.warehouse.client import get_client
    from rtfin_cli.warehouse.ddl import apply

    ch = ch.model_copy(update={"raw_database": f"hops_raw_{uuid.uuid4().hex[:8]}"})
    apply(ch)
    return ch, get_client(ch)


def _ms(t: float) -> str:
    """A DateTime64(3, 'UTC') literal (plain VALUES, no expression to interpret)."""
    import datetime as dt

    return "'" + dt.datetime.fromtimestamp(t, dt.UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] + "'"


def test_hops_from_stored_times(clickhouse_settings: Any) -> None:
    from rtfin_cli.lag.hops import read_hops
    from rtfin_cli.lag.source import SourceClock

    ch, client = _tables(clickhouse_settings)
    raw, now = ch.raw_database, time.time()
    # ten articles, loaded in the last minute: event → ingest 2..11 s, ingest → loaded 0.5 s
    news = [(f"a{i}", now - 60 + i, now - 60 + i + 2 + i, now - 60 + i + 2.5 + i) for i in range(10)]
    client.command(f"INSERT INTO {raw}.news (id, published_utc, title, publisher, tickers, keywords, ingested_at, "
                   f"_loaded_at) VALUES " + ",".join(f"('{a}', {_ms(p)}, 't', ('p','','',''), [], [], {_ms(i)}, {_ms(ld)})"
                                                     for a, p, i, ld in news))  # fmt: skip
    # scored 1 s after ingest, loaded 3 s after scoring; one scored article loaded long ago (outside)
    scored = [(a, p, i + 1.0, i + 4.0) for a, p, i, _ in news] + [("old", now - 9000, now - 7200, now - 7000)]
    client.command(f"INSERT INTO {raw}.news_sentiment (id, published_utc, tickers, label, score, sentiment, "
                   f"scored_at, _loaded_at) VALUES " + ",".join(f"('{a}', {_ms(p)}, [], 'neutral', 1, 0, {_ms(s)}, "
                                                                f"{_ms(ld)})" for a, p, s, ld in scored))  # fmt: skip
    hops = {
        (h.pipeline, h.hop): h
        for h in read_hops(client, raw, 300.0, time.time(), SourceClock(now=time.time()))
    }
    ev = hops[("news", "event → ingest")]
    assert (
        ev.rows == 10 and ev.p50_s == pytest.approx(6.5, abs=0.6) and ev.p95_s == pytest.approx(10.5, abs=0.6)
    )
    assert hops[("news", "ingest → loaded")].p50_s == pytest.approx(0.5, abs=0.01)
    assert hops[("sentiment", "event → scored")].rows == 10  # the old one is outside the window
    # scored 1 s after ingest: 3..12 s after the event
    assert hops[("sentiment", "event → scored")].p50_s == pytest.approx(7.5, abs=0.6)
    assert hops[("sentiment", "scored → loaded")].p50_s == pytest.approx(3.0, abs=0.01)
    assert hops[("stocks", "event → ingest")].rows == 0 and hops[("stocks", "event → ingest")].p50_s is None


def test_event_times_go_through_the_replay_clock(clickhouse_settings: Any) -> None:
    from rtfin_cli.lag.hops import read_hops
    from rtfin_cli.lag.source import SourceClock

    ch, client = _tables(clickhouse_settings)
    raw, wall = ch.raw_database, time.time()
    clock = SourceClock(
        now=wall + 3 * 3600, speed=60.0, replay=True, wall=wall
    )  # the replay runs 3 h ahead, x60
    # a bar that ended 60 replay-seconds before the replay's now: 1 wall second ago; ingested now
    bar_end = clock.now - 60
    client.command(f"INSERT INTO {raw}.stock_aggs (ev, sym, s, e, o, h, l, c, v, ingested_at) VALUES "
                   f"('AM', 'AAPL', {int((bar_end - 60) * 1000)}, {int(bar_end * 1000)}, 1, 1, 1, 1, 1, {_ms(wall)})")  # fmt: skip
    hop = next(
        h for h in read_hops(client, raw, 60.0, wall, clock) if h.pipeline == "stocks" and "event" in h.hop
    )
    assert hop.rows == 1 and hop.p50_s == pytest.approx(1.0, abs=0.01)


def test_cli_hops_in_json_and_on_screen(
    clickhouse_settings: Any, rtfin_env: dict[str, str], tmp_path: Any
) -> None:
    from tests.conftest import run_cli
    from tests.integration.lag.conftest import lag_env

    ch, client = _tables(clickhouse_settings)
    now = time.time()
    client.command(f"INSERT INTO {ch.raw_database}.news (id, published_utc, title, publisher, tickers, keywords, "
                   f"ingested_at) VALUES ('h1', {_ms(now - 5)}, 't', ('p','','',''), [], [], {_ms(now - 2)})")  # fmt: skip
    env = {**lag_env(rtfin_env), "RTFIN__CLICKHOUSE__HOST": ch.host, "RTFIN__CLICKHOUSE__PORT": str(ch.port),
           "RTFIN__CLICKHOUSE__PASSWORD": ch.password.get_secret_value(),
           "RTFIN__CLICKHOUSE__RAW_DATABASE": ch.raw_database}  # fmt: skip
    import json

    out = run_cli("lag", "--once", "--json", "--hops", "--window", "5m", env=env, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    hops = {(h["pipeline"], h["hop"]): h for h in json.loads(out.stdout)["hops"]}
    assert hops[("news", "event → ingest")]["rows"] == 1
    assert hops[("news", "event → ingest")]["p50_s"] == pytest.approx(3.0, abs=0.01)
    screen = run_cli("lag", "--once", "--hops", "--window", "5m", env={**env, "COLUMNS": "80"}, cwd=tmp_path)
    assert "per-hop latency" in screen.stdout and "event → ingest" in screen.stdout
