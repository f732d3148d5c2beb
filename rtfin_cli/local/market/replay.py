"""The replay server's state: the replay clock, the injected faults, the open WebSocket connections.

:class:`Market` holds the dataset index (articles by time), the clock that maps wall time to dataset time,
the fault switches of ``/_control/faults`` and what was served (``/_control/emitted``).
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

from rtfin_cli.local.market import dataset as ds


def default_start_ms() -> int:
    """Five minutes before the open of the sixth trading day: a week of news backlog, then live trading."""
    return ds.trading_days()[5] - 5 * ds.MINUTE_MS


class Clock:
    """Dataset time as a function of wall time; pausable, re-anchored on every change (never jumps).

    With a ``timeline`` file the clock outlives the server: a restarted replay continues the same timeline
    (the same shift, the dataset time it would have reached had it kept running), so an article id keeps
    its publish time and a producer resuming from its topic's newest article finds the replay past it.
    A new timeline (``resume=False``: an explicit start; no file yet, or an unreadable one) is saved there.
    With ``skip_closed`` the clock runs on session time only: at a session's close it goes on at the next
    open, and after the dataset's last session with its first again, two weeks (``LAP_MS``) on, endlessly
    (the end is ignored). For benchmarks at high speeds: the overnight hours would otherwise be most of the
    wall time, and the dataset's ten sessions last a minute at speed 3840. Later laps have bars, no news.
    """

    def __init__(
        self,
        start_ms: int,
        speed: float,
        end_ms: int = ds.END_MS,
        timeline: Path | None = None,
        resume: bool = True,
    ) -> None:
        wall = time.time() * 1000
        self.shift_ms = int((wall - start_ms) // ds.MINUTE_MS * ds.MINUTE_MS)
        self.end_ms = end_ms
        self._anchor_sim, self._anchor_wall, self.speed = float(start_ms), wall, speed
        self.skip_closed = False
        self.timeline = timeline
        if timeline is not None and resume and self._restore(timeline):
            self.set(speed=speed)  # the saved timeline, continued at this run's speed
        else:
            self._save()

    def _restore(self, path: Path) -> bool:
        try:
            saved = json.loads(path.read_text())
            shift, sim, wall, speed = (saved[k] for k in ("shift_ms", "anchor_sim", "anchor_wall", "speed"))
            self.shift_ms, self._anchor_sim, self._anchor_wall, self.speed = int(shift), sim, wall, speed
            self.skip_closed = bool(saved.get("skip_closed", False))
        except (OSError, ValueError, KeyError, TypeError):
            return False
        return True

    def _save(self) -> None:
        if self.timeline is None:
            return
        doc = {"shift_ms": self.shift_ms, "anchor_sim": self._anchor_sim, "anchor_wall": self._anchor_wall,
               "speed": self.speed, "skip_closed": self.skip_closed}  # fmt: skip
        self.timeline.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.timeline.with_suffix(".tmp")
        tmp.write_text(json.dumps(doc))
        tmp.replace(self.timeline)

    def now(self) -> int:
        elapsed = (time.time() * 1000 - self._anchor_wall) * self.speed
        if self.skip_closed:
            return int(ds.advance_sessions(self._anchor_sim, elapsed))
        return int(min(self._anchor_sim + elapsed, self.end_ms))

    def set(
        self,
        speed: float | None = None,
        sim_ms: int | None = None,
        end_ms: int | None = None,
        skip_closed: bool | None = None,
    ) -> None:
        self._anchor_sim, self._anchor_wall = (
            float(self.now() if sim_ms is None else sim_ms),
            time.time() * 1000,
        )
        if speed is not None:
            self.speed = speed
        if end_ms is not None:
            self.end_ms = end_ms
        if skip_closed is not None:
            self.skip_closed = skip_closed
        self._save()

    @property
    def finished(self) -> bool:
        return not self.skip_closed and self.now() >= self.end_ms


@dataclass
class Faults:
    burst_429: int = 0
    http_5xx: int = 0
    malformed_frames: int = 0
    malformed_articles: int = 0
    latency_s: float = 0.0  # added to every news response
    auth_fail: bool = False
    max_connections: bool = False
    retry_after: float = 1.0
    cut_ws_every_s: float = 0.0  # cut every WebSocket connection this often (0 = never)
    cut_ws_jitter_s: float = 0.0  # plus up to this much, drawn afresh for each cut

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(eq=False)
class Conn:
    ws: web.WebSocketResponse
    subs: set[str] = field(default_factory=set)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    sender: asyncio.Task[None] | None = None
    transport: Any = None  # the TCP transport, for the cut fault's abort


class Market:
    """Server state: clock, dataset index, faults, connections and the emitted report."""

    def __init__(
        self,
        speed: float,
        start_ms: int | None = None,
        end_ms: int = ds.END_MS,
        rate_limit: float = 0.0,
        timeline: Path | None = None,
    ) -> None:
        start = default_start_ms() if start_ms is None else start_ms
        self.clock = Clock(start, speed, end_ms, timeline, resume=start_ms is None)
        self.articles = ds.news()
        self.times = [ds.parse_ms(str(a["published_utc"])) for a in self.articles]
        self.symbols = {t.symbol for t in ds.tickers()}
        self.faults = Faults()
        self.rate_limit = rate_limit
        self._bucket, self._bucket_at = max(1.0, rate_limit), time.monotonic()
        self.conns: set[Conn] = set()
        self.frames: dict[tuple[int, int, frozenset[str]], list[tuple[str, list[str]]]] = {}
        self._naps: set[asyncio.Future[None]] = set()
        self.reset()

    def set_clock(
        self,
        speed: float | None = None,
        sim_ms: int | None = None,
        end_ms: int | None = None,
        skip_closed: bool | None = None,
    ) -> None:
        """``Clock.set``, waking every sender that waits for the clock (``nap``) to look at it at once."""
        self.clock.set(speed=speed, sim_ms=sim_ms, end_ms=end_ms, skip_closed=skip_closed)
        for fut in self._naps:
            if not fut.done():
                fut.set_result(None)

    async def nap(self, seconds: float) -> None:
        """Sleep up to ``seconds``; a clock change (``set_clock``) ends it early."""
        fut = asyncio.get_running_loop().create_future()
        self._naps.add(fut)
        try:
            await asyncio.wait_for(fut, seconds)
        except TimeoutError:
            pass
        finally:
            self._naps.discard(fut)

    def reset(self) -> None:
        self.faults = Faults()
        self.emitted_articles: dict[str, None] = {}
        self.emitted_bars: dict[str, None] = {}
        self.malformed_articles: list[str] = []
        self.counters = {
            "requests": 0,
            "rate_limited": 0,
            "bars_sent": 0,
            "frames": 0,
            "malformed_sent": 0,
            "connections": 0,
            "ws_cuts": 0,
        }

    # -- time helpers ------------------------------------------------------------------------------
    def shown(self, ms: int) -> int:
        return ms + self.clock.shift_ms

    def article(self, i: int) -> dict[str, Any]:
        """Article ``i`` as the news API returns it (with the dataset's insights; without its label)."""
        art = {k: v for k, v in self.articles[i].items() if k != "label"}
        art["published_utc"] = ds.iso(self.shown(self.times[i]))
        return art

    # -- rate limiting -----------------------------------------------------------------------------
    def take_token(self) -> bool:
        if self.rate_limit <= 0:
            return True
        now = time.monotonic()
        self._bucket = min(
            max(1.0, self.rate_limit), self._bucket + (now - self._bucket_at) * self.rate_limit
        )
        self._bucket_at = now
        if self._bucket >= 1:
            self._bucket -= 1
            return True
        return False


MARKET = web.AppKey("market", Market)
