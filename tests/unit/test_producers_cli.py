"""Option parsing of `rtfin produce` (times, durations) and its usage errors."""

from __future__ import annotations

import time

import pytest

from rtfin_cli.cli.produce import parse_duration, parse_time
from rtfin_cli.errors import UsageError
from tests.conftest import run_cli


def test_durations() -> None:
    assert parse_duration("20s", "x") == 20 and parse_duration("5m", "x") == 300
    assert parse_duration("1.5h", "x") == 5400 and parse_duration("7", "x") == 7
    with pytest.raises(UsageError, match="--interval"):
        parse_duration("soon", "--interval")


def test_times_iso_or_ago() -> None:
    assert parse_time("2025-01-06T14:30:00Z", "x") == 1_736_173_800_000
    assert parse_time("2025-01-06", "x") == 1_736_121_600_000
    assert abs(parse_time("24h", "x") - (time.time() - 86400) * 1000) < 5000
    with pytest.raises(UsageError, match="--since"):
        parse_time("last tuesday", "--since")


def test_bad_options_exit_2_with_one_line() -> None:
    out = run_cli("produce", "news", "--since", "2025-01-02", "--until", "2025-01-01")
    assert out.returncode == 2 and out.stderr.startswith("error: --until must be later than --since")
    out = run_cli("produce", "stocks", "--tickers", "AAPL", "--all")
    assert out.returncode == 2 and "exclusive" in out.stderr


@pytest.mark.parametrize("command", [("produce", "stocks"), ("produce", "news"), ("gaps",)])
def test_an_empty_tickers_option_is_a_usage_error_never_every_ticker(command: tuple[str, ...]) -> None:
    out = run_cli(*command, "--tickers", " , ")
    assert out.returncode == 2 and out.stderr.startswith("error: --tickers is empty"), out.stderr
