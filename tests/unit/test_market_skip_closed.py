"""The replay clock's skip_closed mode: session time only, from each close straight to the next open, and
after the dataset's last session on with its first again, two weeks later (a lap)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient, TestServer

from rtfin_cli.local.market import dataset as ds
from rtfin_cli.local.market.replay import Clock, Market
from rtfin_cli.local.market.server import make_app

M = ds.MINUTE_MS
SESSION = ds.SESSION_MINUTES * M


def test_advance_sessions_skips_the_closed_hours_and_inverts() -> None:
    days = ds.trading_days()
    assert ds.advance_sessions(days[0] + 10 * M, 5 * M) == days[0] + 15 * M
    assert ds.advance_sessions(days[0] + SESSION - M, 3 * M) == days[1] + 2 * M  # over the night
    assert ds.advance_sessions(days[4] + SESSION - M, 2 * M) == days[5] + M  # over the weekend
    assert ds.advance_sessions(days[0] - 60 * M, 0) == days[0]  # closed: counts from the next open
    assert ds.advance_sessions(days[-1], SESSION + 5 * M) == days[0] + ds.LAP_MS + 5 * M  # the next lap
    assert ds.advance_sessions(days[0], 25 * ds.lap_session_ms() + M) == days[0] + 25 * ds.LAP_MS + M
    for a, by in ((days[0] + 7 * M, 3 * SESSION + 11 * M), (days[2] - M, 1234.0), (days[3], 30 * SESSION)):
        b = ds.advance_sessions(a, by)
        assert ds.session_ms_between(max(a, days[0]), b) == by
        assert ds.session_ms_between(b, a) == -by
    assert ds.session_ms_between(days[0] + SESSION, days[1]) == 0  # a night is no session time


def test_a_later_lap_repeats_the_sessions_two_weeks_on() -> None:
    days = ds.trading_days()
    later = days[3] + 2 * ds.LAP_MS + 7 * M
    assert ds.session_index(later, loop=True) == (3, 7) and ds.session_index(later) is None
    assert ds.next_session_minute(ds.END_MS) is None  # without loop the dataset ends
    assert ds.next_session_minute(ds.END_MS, loop=True) == days[0] + ds.LAP_MS
    assert ds.next_session_minute(days[1] + ds.LAP_MS - M, loop=True) == days[1] + ds.LAP_MS


def test_a_skip_closed_clock_goes_from_the_close_to_the_next_open(tmp_path: Path) -> None:
    days = ds.trading_days()
    clock = Clock(days[1] + SESSION - M, 6000.0, timeline=tmp_path / "timeline.json")  # 100 min per s
    clock.set(skip_closed=True)
    time.sleep(0.05)  # ~5 session minutes: past the close, into the next session
    now = clock.now()
    assert days[2] < now < days[2] + 30 * M
    restored = Clock(days[0], 6000.0, timeline=tmp_path / "timeline.json")  # the mode is in the timeline
    assert restored.skip_closed and days[2] <= restored.now() < days[2] + 60 * M
    clock.set(skip_closed=False, sim_ms=days[2] + SESSION, speed=0.0)
    assert clock.now() == days[2] + SESSION  # off again: the closed hours are ordinary time


def test_control_clock_sets_and_reports_skip_closed() -> None:
    async def main() -> None:
        m = Market(speed=0.0, start_ms=ds.trading_days()[1] - 30 * M)
        async with TestClient(TestServer(make_app(m))) as c:
            assert (await c.post("/_control/clock", json={"skip_closed": "yes"})).status == 400
            doc: dict[str, Any] = await (await c.post("/_control/clock", json={"skip_closed": True})).json()
            assert doc["skip_closed"] is True
            assert doc["dataset_now"] == ds.iso(ds.trading_days()[1])  # paused before the open: at the open

    asyncio.run(main())


def test_the_stream_goes_on_into_the_next_lap_with_later_times() -> None:
    """Bars across the dataset's end: the last minute of lap 0, then lap 1's first, shifted two weeks."""
    days = ds.trading_days()

    async def main() -> None:
        m = Market(speed=600.0, start_ms=days[-1] + SESSION - 2 * M)  # 10 dataset minutes per wall second
        m.set_clock(skip_closed=True)
        async with TestClient(TestServer(make_app(m))) as c:
            ws = await c.ws_connect("/stocks")
            for msg in ({"action": "auth", "params": "k"}, {"action": "subscribe", "params": "AM.AAPL"}):
                await ws.send_json(msg)
            starts: list[int] = []
            while len(starts) < 3:
                starts += [ev["s"] for ev in await ws.receive_json(timeout=10) if ev.get("ev") == "AM"]
            await ws.close()
        shift = m.clock.shift_ms
        assert starts[:3] == [days[-1] + SESSION - 2 * M + shift, days[-1] + SESSION - M + shift,
                              days[0] + ds.LAP_MS + shift]  # fmt: skip

    asyncio.run(main())
