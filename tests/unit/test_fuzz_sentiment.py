"""Fuzz (hypothesis) of the sentiment job's pure record parsing: the published time of any article string
gives epoch ms or None (the Kafka timestamp then falls back to the input record's), never an exception
that would fail a micro-batch. Record validation itself runs in Spark (from_json/try_parse_json; DLQ rows
are covered by tests/integration/sentiment)."""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from jobs.sentiment_kafka import _epoch_ms
from jobs.sentiment_stream import parse_args

FUZZ = settings(max_examples=500, deadline=None)


@FUZZ
@given(st.none() | st.text(max_size=40))
def test_published_time_never_raises(text: str | None) -> None:
    out = _epoch_ms(text)
    assert out is None or isinstance(out, int)


@FUZZ
@given(st.datetimes(min_value=datetime(1971, 1, 1), max_value=datetime(2200, 1, 1), timezones=st.just(UTC)))
def test_iso_times_round_trip(dt: datetime) -> None:
    ms = _epoch_ms(dt.isoformat().replace("+00:00", "Z"))
    assert ms == int(dt.timestamp() * 1000)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(max_size=20), max_size=6))
def test_job_arguments_fail_cleanly(argv: list[str]) -> None:
    """Arbitrary job arguments parse or exit through argparse (SystemExit), never a traceback."""
    with contextlib.suppress(SystemExit):
        parse_args(argv)
