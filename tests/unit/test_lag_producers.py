"""Producer stages: a quiet source is IDLE (with the next open), a stuck producer STALLED, ages unclamped."""

from __future__ import annotations

from rtfin_cli.lag.model import IDLE, OK, STALLED
from rtfin_cli.lag.producers import age_s, news_state, stocks_state
from rtfin_cli.lag.source import SourceClock

NOW = 1_800_000_000.0
WINDOW = 30.0


def _day_time(epoch: float) -> str:
    import datetime as dt

    return dt.datetime.fromtimestamp(epoch, dt.UTC).strftime("%a %H:%M UTC")


def _replay(**kw: object) -> SourceClock:
    return SourceClock(now=NOW, speed=60.0, replay=True, **kw)  # type: ignore[arg-type]


def test_ages_are_wall_seconds_on_the_event_clock_and_never_clamped() -> None:
    assert age_s(NOW - 600, _replay()) == 10.0  # 10 replay minutes at 60x: 10 s of wall time
    assert age_s(NOW + 120, SourceClock(now=NOW)) == -120.0  # ahead of the clock: negative


def test_stocks_idle_while_the_market_is_closed_with_the_next_open() -> None:
    clock = _replay(market_open=False, next_open=NOW + 3600)
    state, why = stocks_state(NOW - 7200, clock, WINDOW, moved=False)
    assert state == IDLE and why == f"market closed; opens {_day_time(NOW + 3600)}"


def test_stocks_stalled_while_the_market_is_open_and_no_bar_comes() -> None:
    clock = _replay(market_open=True, opened=NOW - 3 * 3600)
    assert stocks_state(NOW - 5, clock, WINDOW, moved=False)[0] == OK  # the current minute's bar
    assert stocks_state(NOW - 60 * 25, clock, WINDOW, moved=False)[0] == OK  # 25 s of wall time
    state, why = stocks_state(NOW - 60 * 40, clock, WINDOW, moved=False)  # 40 s: > window + one bar
    assert state == STALLED and "market is open" in why
    assert stocks_state(NOW - 60 * 40, clock, WINDOW, moved=True)[0] == OK  # bars arrived in the window


def test_stocks_just_after_the_open_is_not_a_stall() -> None:
    clock = _replay(market_open=True, opened=NOW - 60)  # one replay minute after the open
    state, why = stocks_state(NOW - 18 * 3600, clock, WINDOW, moved=False)  # yesterday's last bar
    assert state == OK and why == "market just opened"


def test_news_idle_when_the_replay_has_nothing_newer() -> None:
    clock = _replay(newest_article=NOW - 3600, next_article=None)
    state, why = news_state(NOW - 3600, clock, WINDOW, moved=False, poll_s=2.0)
    assert state == IDLE and "nothing newer" in why


def test_news_stalled_when_the_first_missing_article_is_older_than_the_window() -> None:
    # the replay keeps publishing (its newest is a second old): what counts is the first one not produced
    clock = _replay(newest_article=NOW - 60, next_article=NOW - 60 * 40)  # out for 40 s of wall time
    state, why = news_state(NOW - 3 * 3600, clock, WINDOW, moved=False, poll_s=2.0)
    assert state == STALLED and why.startswith("40s behind the source")
    recent = _replay(newest_article=NOW - 60, next_article=NOW - 60 * 10)  # 10 s ago: the next poll gets it
    assert news_state(NOW - 3 * 3600, recent, WINDOW, moved=False, poll_s=2.0)[0] == OK


def test_news_elsewhere_cannot_tell_quiet_from_stopped() -> None:
    clock = SourceClock(now=NOW)
    assert news_state(NOW - 10, clock, WINDOW, moved=False, poll_s=20.0)[0] == OK
    state, why = news_state(NOW - 3600, clock, WINDOW, moved=False, poll_s=20.0)
    assert state == IDLE and "look alike" in why


def test_news_stalled_when_the_topic_is_ahead_of_the_replay() -> None:
    """A topic filled on an earlier timeline: the producer resumes after its newest article and waits."""
    state, why = news_state(NOW + 60 * 600, _replay(), WINDOW, moved=False, poll_s=2.0)  # 600 s ahead
    assert state == STALLED and why.startswith("newest article 600s ahead of the replay")
    assert news_state(NOW + 60 * 10, _replay(), WINDOW, moved=False, poll_s=2.0)[0] == OK  # 10 s: clock skew
