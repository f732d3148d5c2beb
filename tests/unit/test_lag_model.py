"""State rules, sliding window, durations and rendering of `rtfin lag` — pure data, no services."""

from __future__ import annotations

import datetime as dt

import pytest

from rtfin_cli.errors import UsageError
from rtfin_cli.lag.model import (
    LAGGING,
    OK,
    STALLED,
    GroupLag,
    PartitionLag,
    Snapshot,
    Thresholds,
    Window,
    parse_duration,
    partition_state,
    rates,
    row_state,
)
from rtfin_cli.lag.warehouse import to_epoch

KEY = ("g", "t", 0)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("2s", 2.0), ("500ms", 0.5), ("1.5m", 90.0), ("1h", 3600.0), ("3", 3.0), (" 10 s ", 10.0)],
)
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "2 days", "-1s", "0s", "s", "1.2.3s"])
def test_parse_duration_rejects_bad_input(text: str) -> None:
    with pytest.raises(UsageError):
        parse_duration(text, "--interval")


def _observe(w: Window, samples: list[tuple[float, int, int]]) -> None:
    for t, committed, end in samples:
        w.observe(KEY, t, committed, end)


def test_rates_trend_and_eta_over_the_window() -> None:
    w = Window(10)
    # consumer at 40 msg/s, producer at 20 msg/s: lag shrinks from 200 by 20/s
    _observe(w, [(0, 0, 200), (5, 200, 300), (10, 400, 400)])
    seconds, consumed, produced = w.delta(KEY)  # type: ignore[misc]
    assert (seconds, consumed, produced) == (10, 400, 200)
    consume, produce, trend, eta = rates(seconds, consumed, produced, lag=100)
    assert (consume, produce, trend) == (40.0, 20.0, "shrinking")
    assert eta == pytest.approx(100 / 20)


def test_window_slides_but_keeps_one_sample_before_its_start() -> None:
    w = Window(10)
    _observe(w, [(0, 0, 0), (4, 10, 10), (8, 20, 20), (12, 30, 30), (16, 40, 40)])
    assert w.delta(KEY) == (12, 30, 30)  # from t=4 (the last sample at or before 16 - 10) to t=16


def test_growing_lag_has_no_eta() -> None:
    consume, produce, trend, eta = rates(10, 50, 100, lag=500)
    assert trend == "growing" and eta is None


def test_idle_caught_up_partition_never_stalls() -> None:
    """Burrow's false alarm: a quiet topic, a caught-up group, commits that stop moving."""
    w = Window(5)
    _observe(w, [(t, 100, 100) for t in range(0, 60, 2)])
    assert w.stalled_s(KEY, 60) == 0
    part = PartitionLag(0, 100, 100, lag=0, time_lag_s=0.0, stalled_s=w.stalled_s(KEY, 60))
    assert partition_state(part, 5, Thresholds(0, 1)) == OK


def test_new_message_after_idle_needs_a_whole_window_to_stall() -> None:
    w = Window(5)
    _observe(w, [(t, 100, 100) for t in range(0, 30, 2)])
    w.observe(KEY, 30, 100, 101)  # one message arrives; the committed offset has not moved for 30 s
    assert w.stalled_s(KEY, 30) == 0
    w.observe(KEY, 33, 100, 101)
    assert w.stalled_s(KEY, 33) == 3  # < window: not stalled yet
    w.observe(KEY, 36, 100, 101)
    assert w.stalled_s(KEY, 36) == 6  # >= window: stalled


def test_progress_resets_the_stall_clock() -> None:
    w = Window(5)
    _observe(w, [(0, 0, 50), (4, 0, 60), (8, 10, 70)])
    assert w.stalled_s(KEY, 8) == 0
    w.observe(KEY, 14, 10, 80)
    assert w.stalled_s(KEY, 14) == 6


def _row(members: int, lags: list[tuple[int, float, float]], consume: float | None = None) -> GroupLag:
    th, window = Thresholds(max_lag=100, max_age_s=60), 10
    row = GroupLag("g", "t", members=members, consume_rate=consume)
    for i, (lag, age, stalled) in enumerate(lags):
        p = PartitionLag(i, 0, lag, lag, age, stalled_s=stalled)
        p.state = partition_state(p, window, th)
        row.partitions.append(p)
        row.lag += lag
        row.time_lag_s = max(row.time_lag_s, age)
    row.state = row_state(row, window, th)
    return row


def test_state_rules() -> None:
    assert _row(1, [(0, 0, 0), (0, 0, 0)]).state == OK  # caught up
    assert _row(1, [(50, 5, 2)], consume=10).state == OK  # behind, under both thresholds, moving
    assert _row(1, [(500, 5, 2)], consume=10).state == LAGGING  # over max_lag, moving
    assert _row(1, [(5, 120, 2)], consume=10).state == LAGGING  # over max_age, moving
    assert _row(1, [(5, 1, 0), (5, 1, 12)], consume=1).state == STALLED  # one partition stuck for > window
    # no members is not a state: a job that commits through transactions (Spark) is judged by its progress
    assert _row(0, [(0, 0, 0)]).state == OK  # caught up
    assert _row(0, [(5, 1, 0)], consume=3.0).state == OK  # moving
    assert _row(0, [(5, 1, 12)]).state == STALLED  # messages waiting, no progress for > window


def test_a_consumer_stuck_before_the_view_began_stalls_after_the_settle_time() -> None:
    th, window, settle = Thresholds(max_lag=100, max_age_s=600), 10.0, 2.0
    waited_long = PartitionLag(0, 0, 5, 5, time_lag_s=300.0, stalled_s=2.5)  # watched 2.5 s, no progress
    assert partition_state(waited_long, window, th, settle) == STALLED
    just_arrived = PartitionLag(0, 0, 5, 5, time_lag_s=3.0, stalled_s=2.5)  # head younger than the window
    assert partition_state(just_arrived, window, th, settle) == OK
    too_soon = PartitionLag(0, 0, 5, 5, time_lag_s=300.0, stalled_s=1.0)  # not watched long enough
    assert partition_state(too_soon, window, th, settle) == OK
    assert partition_state(waited_long, window, th) == OK  # without a settle time: the whole window


def test_thresholds_exceeded_messages() -> None:
    th = Thresholds(max_lag=10, max_age_s=30)
    assert th.exceeded(10, 30) == []
    assert th.exceeded(11, 31) == ["lag 11 > 10", "time lag 31.0s > 30s"]
    assert Thresholds().exceeded(10**9, 10**9) == []


def test_snapshot_totals_and_json_shape() -> None:
    rows = [_row(1, [(500, 5, 2)], consume=1), _row(1, [(0, 0, 0)])]
    snap = Snapshot(0.0, 0.1, {"bootstrap": "x", "status": "ok", "error": ""}, rows)
    totals = snap.totals()
    assert totals["lag"] == 500 and totals["states"] == {LAGGING: 1, OK: 1} and totals["groups"] == 1
    doc = snap.as_dict(wide=False)
    assert "partitions" not in doc["groups"][0] and doc["totals"]["rows"] == 2
    assert snap.as_dict(wide=True)["groups"][0]["partitions"][0]["lag"] == 500


def test_to_epoch() -> None:
    when = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
    assert to_epoch(when) == when.timestamp()
    assert to_epoch(when.replace(tzinfo=None)) == when.timestamp()  # naive = UTC
    assert to_epoch(1_700_000_000_000) == 1_700_000_000.0  # epoch ms
    assert to_epoch(1_700_000_000) == 1_700_000_000.0  # epoch s
    assert to_epoch(dt.datetime(1970, 1, 1, tzinfo=dt.UTC)) is None  # max() of no rows
    assert to_epoch(None) is None and to_epoch("x") is None


def test_render_shows_states_rows_and_partitions() -> None:
    from rich.console import Console

    from rtfin_cli.cli.lag import fmt_age, log_lines, render

    rows = [_row(1, [(500, 75, 2), (0, 0, 0)], consume=1)]
    snap = Snapshot(
        0.0, 0.1, {"bootstrap": "b:9092", "status": "ok", "error": ""}, rows, thresholds=Thresholds(100, 60)
    )
    console = Console(width=200, record=True)
    console.print(render(snap, wide=True))
    text = console.export_text()
    assert "LAGGING" in text and "b:9092" in text and "lag 500 msgs" in text and "[1] 0/0" in text
    assert fmt_age(-125) == "-2m05s"  # ahead of the clock: shown, never clamped
    assert (
        fmt_age(None) == "-"
        and fmt_age(4.25) == "4.2s"
        and fmt_age(125) == "2m05s"
        and fmt_age(7500) == "2h05m"
    )
    assert fmt_age(90000) == "1d01h"
    lines = log_lines(snap)
    assert lines[1].split()[1:5] == ["g", "t", "lag=500", "time_lag_s=75.0"]
    down = Snapshot(0.0, 0.1, {"bootstrap": "b:9092", "status": "unreachable", "error": "boom"}, [])
    assert "UNREACHABLE" in log_lines(down)[0]
