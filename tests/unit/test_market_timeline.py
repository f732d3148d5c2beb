"""A restarted replay continues its timeline: an article id keeps its publish time across restarts."""

from __future__ import annotations

import json
import time
from pathlib import Path

from rtfin_cli.local.market import dataset as ds
from rtfin_cli.local.market.replay import Clock, Market


def _published(m: Market) -> dict[str, str]:
    return {m.articles[i]["id"]: m.article(i)["published_utc"] for i in range(0, len(m.articles), 97)}


def test_a_restart_keeps_the_shift_and_the_clock_runs_on(tmp_path: Path) -> None:
    timeline = tmp_path / "market" / "timeline.json"
    first = Market(speed=60.0, timeline=timeline)
    before, sim_before = _published(first), first.clock.now()
    time.sleep(0.05)
    again = Market(speed=60.0, timeline=timeline)  # what `rtfin local down` then `up` does
    assert again.clock.shift_ms == first.clock.shift_ms and _published(again) == before
    assert again.clock.now() >= sim_before + 0.05 * 60 * 1000 * 0.9  # it kept running while down
    slower = Market(speed=1.0, timeline=timeline)  # another speed continues the same timeline
    assert slower.clock.shift_ms == first.clock.shift_ms and slower.clock.speed == 1.0
    assert abs(slower.clock.now() - again.clock.now()) < 10_000


def test_without_a_timeline_or_with_an_explicit_start_a_new_timeline_begins(tmp_path: Path) -> None:
    timeline = tmp_path / "timeline.json"
    Market(speed=60.0, timeline=timeline)
    saved = json.loads(timeline.read_text())
    start = ds.trading_days()[2]
    fresh = Market(speed=60.0, start_ms=start, timeline=timeline)
    assert abs(fresh.clock.now() - start) < 60_000 and json.loads(timeline.read_text()) != saved
    timeline.write_text("{not json")  # unreadable: a new timeline, saved again
    clock = Clock(start, 60.0, timeline=timeline)
    assert json.loads(timeline.read_text())["shift_ms"] == clock.shift_ms


def test_clock_changes_are_saved(tmp_path: Path) -> None:
    timeline = tmp_path / "timeline.json"
    m = Market(speed=60.0, timeline=timeline)
    m.clock.set(speed=0.0, sim_ms=ds.trading_days()[3])
    again = Market(speed=0.0, timeline=timeline)
    assert again.clock.now() == ds.trading_days()[3]
