"""Reconnect policy and gap repair bookkeeping of the stocks feed (no services)."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import pytest

from rtfin_cli.errors import ServiceUnavailable
from rtfin_cli.producers.repair import Repairer, Resume
from rtfin_cli.sources.reconnect import FIRST_DELAY_S, ReconnectPolicy

M = 60_000


class FakeClock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def test_a_drop_after_subscribing_never_grows_the_delay_nor_ends_the_stream() -> None:
    p = ReconnectPolicy(max_failures=2)
    for _ in range(200):
        p.subscribed()
        delay = p.lost(streamed=True)
        assert delay is not None and 0 <= delay <= FIRST_DELAY_S
    assert p.connects == 200 and p.reconnects == 200 and p.failures == 0


def test_backoff_grows_with_consecutive_failures_capped_and_resets_on_subscribe() -> None:
    p = ReconnectPolicy(max_failures=100, base_s=0.5, cap_s=30)
    p.subscribed()
    bounds = []
    for _ in range(12):
        delay = p.lost(streamed=False)
        assert delay is not None
        bounds.append(min(30, 0.5 * 2**p.failures))
        assert 0.5 <= delay <= bounds[-1]
    assert bounds[-1] == 30  # capped
    p.subscribed()
    delay = p.lost(streamed=True)
    assert delay is not None and delay <= FIRST_DELAY_S


def test_never_connected_gives_up_but_a_stream_that_ran_keeps_trying() -> None:
    fresh = ReconnectPolicy(max_failures=2)
    assert fresh.lost(False) is not None and fresh.lost(False) is not None
    assert fresh.lost(False) is None  # a third failed attempt without ever subscribing
    ran = ReconnectPolicy(max_failures=2)
    ran.subscribed()
    assert all(ran.lost(False) is not None for _ in range(50))


def test_longest_disconnected_span_counts_the_current_outage() -> None:
    clock = FakeClock()
    p = ReconnectPolicy(_clock=clock)
    p.subscribed()
    p.lost(True)
    clock.t += 4
    p.subscribed()
    p.lost(True)
    clock.t += 1
    p.subscribed()
    assert p.longest_disconnected_s == 4
    p.lost(False)
    clock.t += 9
    assert p.as_dict() == {"connects": 3, "reconnects": 3, "longest_disconnected_s": 9}


class FakeAggs:
    """Stands in for AggsClient: answers from a table of bars per ticker, or fails."""

    def __init__(self, fail: set[str] | None = None) -> None:
        self.calls: list[tuple[str, int, int]] = []
        self.fail = fail or set()

    def minute_bars(self, ticker: str, from_ms: int, to_ms: int) -> list[dict[str, Any]]:
        self.calls.append((ticker, from_ms, to_ms))
        if ticker in self.fail:
            raise ServiceUnavailable("down")
        return [{"t": t, "o": 1.0} for t in range(from_ms, to_ms + 1, M)]

    def close(self) -> None:
        self.closed = True


def _repairer(client: FakeAggs, resume: Resume | None = None) -> tuple[Repairer, list[tuple[str, int]]]:
    got: list[tuple[str, int]] = []

    def emit(sym: str, bars: list[Any]) -> int:
        got.extend((sym, bar["t"]) for bar in bars)
        return len(bars)

    return Repairer(client, emit, concurrency=2, resume=resume), got  # type: ignore[arg-type]


def test_only_the_minutes_strictly_between_connections_are_repaired() -> None:
    async def main() -> None:
        client = FakeAggs()
        r, got = _repairer(client)
        r.observe("AAPL", 10 * M, conn=1)
        r.observe("AAPL", 11 * M, conn=1)
        r.observe("AAPL", 13 * M, conn=1)  # a gap on one connection: the ticker did not trade
        r.observe("AAPL", 20 * M, conn=2)  # first bar after a reconnect
        r.observe("MSFT", 20 * M, conn=2)  # first sight, no resume point: nothing to repair
        r.observe("MSFT", 21 * M, conn=2)
        await r.drain(5)
        r.close()
        assert client.closed and client.calls == [("AAPL", 14 * M, 19 * M)]
        assert got == [("AAPL", t * M) for t in range(14, 20)] and r.repaired == 6

    asyncio.run(main())


def test_start_repairs_from_the_topic_tail_and_failures_are_counted_not_raised() -> None:
    async def main() -> None:
        client = FakeAggs(fail={"XOM"})
        r, got = _repairer(client, Resume({"AAPL": 5 * M}, default_ms=3 * M))
        r.observe("AAPL", 9 * M, conn=1)
        r.observe("JPM", 9 * M, conn=1)  # not in the tail: from the oldest minute the read reached
        r.observe("XOM", 9 * M, conn=1)
        await r.drain(5)
        assert sorted(client.calls) == [("AAPL", 6 * M, 8 * M), ("JPM", 4 * M, 8 * M), ("XOM", 4 * M, 8 * M)]
        assert r.as_dict() == {"repair_windows": 3, "repaired": 3 + 5, "repair_failed": 1}

    asyncio.run(main())


@pytest.mark.parametrize("concurrency", [1, 3])
def test_concurrency_is_bounded(concurrency: int) -> None:
    async def main() -> None:
        active = peak = 0
        lock = threading.Lock()

        class Slow(FakeAggs):
            def minute_bars(self, ticker: str, from_ms: int, to_ms: int) -> list[dict[str, Any]]:
                nonlocal active, peak
                with lock:
                    active += 1
                    peak = max(peak, active)
                time.sleep(0.02)
                with lock:
                    active -= 1
                return []

        r = Repairer(Slow(), lambda s, b: len(b), concurrency=concurrency)  # type: ignore[arg-type]
        for i in range(10):
            r.observe(f"T{i}", 0, conn=1)
            r.observe(f"T{i}", 5 * M, conn=2)
        await r.drain(5)
        assert peak == concurrency and r.windows == 10

    asyncio.run(main())
