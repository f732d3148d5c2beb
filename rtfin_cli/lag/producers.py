"""The state of a producer stage from its topic's newest event time and what the source says (pure rules).

* ``OK``      – the newest event is fresh: younger than the window plus one source period (a minute bar's
  length for stocks), or new messages arrived within the window.
* ``IDLE``    – not fresh, but the source is quiet: the market is closed (the detail names the next open),
  or the source has no article newer than the topic's newest. Without the replay, whether a news feed is
  quiet cannot be seen from Kafka: a news topic with nothing new is IDLE and the detail says so.
* ``STALLED`` – not fresh while the source has something: the market is open (and was open for longer than
  the window), or the replay published the first article the topic lacks longer ago than the window plus
  the poll interval; or the topic's newest article lies more than a window ahead of the replay's clock (left
  by an earlier timeline: a producer resuming after it waits).

Ages are wall-clock seconds on the event clock: (clock − event time) / speed.
"""

from __future__ import annotations

import datetime as dt

from rtfin_cli.lag.model import IDLE, OK, STALLED, LagState
from rtfin_cli.lag.source import SourceClock

BAR_S = 60.0  # event seconds between two minute bars


def _when(epoch: float) -> str:
    """Day and time (UTC) on the event clock: replay time in the demo, as the header says."""
    return dt.datetime.fromtimestamp(epoch, dt.UTC).strftime("%a %H:%M UTC")


def age_s(newest: float, clock: SourceClock) -> float:
    """Wall-clock seconds since the event at ``newest`` on the event clock (negative: ahead of it)."""
    return (clock.now - newest) / clock.speed


def stocks_state(newest: float, clock: SourceClock, window_s: float, moved: bool) -> tuple[LagState, str]:
    """(state, why) of the stocks producer whose newest bar ends at ``newest`` (epoch s, event time)."""
    fresh = window_s + BAR_S / clock.speed
    if moved or age_s(newest, clock) <= fresh:
        return OK, ""
    if clock.market_open and clock.opened is not None and age_s(clock.opened, clock) <= fresh:
        return OK, "market just opened"
    if clock.market_open is False:
        nxt = f"; opens {_when(clock.next_open)}" if clock.next_open else ""
        return IDLE, f"market closed{nxt}"
    if clock.market_open is None:
        return IDLE, "no new bar; market hours unknown"
    return STALLED, f"no bar for {age_s(newest, clock):.0f}s while the market is open"


def news_state(
    newest: float, clock: SourceClock, window_s: float, moved: bool, poll_s: float
) -> tuple[LagState, str]:
    """(state, why) of the news producer whose newest article was published at ``newest``."""
    ahead = -age_s(newest, clock)
    if clock.replay and ahead > window_s and not moved:  # an older timeline's article: resuming waits for it
        return STALLED, f"newest article {ahead:.0f}s ahead of the replay: the producer resumes after it"
    if moved or age_s(newest, clock) <= window_s:
        return OK, ""
    if not clock.replay:
        return IDLE, "no new article (a quiet feed and a stopped producer look alike from Kafka)"
    if clock.next_article is None:
        return IDLE, "no news: the source has nothing newer"
    waited = age_s(clock.next_article, clock)  # how long the first article the topic lacks has been out
    if waited > window_s + poll_s:
        return (
            STALLED,
            f"{waited:.0f}s behind the source (its articles since {_when(clock.next_article)})",
        )
    return OK, ""
