"""`rtfin produce news|stocks`: market data into Kafka (live rich status on a TTY, log lines otherwise)."""

from __future__ import annotations

import logging
import re
import sys
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Annotated

import typer

from rtfin_cli.cli.common import err_console, is_tty, print_json, settings
from rtfin_cli.cli.reporting import PRODUCE, producer_line, reporter_for
from rtfin_cli.errors import UsageError

if TYPE_CHECKING:
    from rtfin_cli.producers.sink import Stats

app = typer.Typer(help="Produce market data (news, stock aggregates) into Kafka.", no_args_is_help=True)
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?$")
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, None: 1}


def parse_duration(text: str, what: str) -> float:
    """Seconds of ``20s``, ``5m``, ``2h``, ``7d`` or a bare number of seconds."""
    m = _DURATION.match(text.strip().lower())
    if not m:
        raise UsageError(f"{what}: cannot read {text!r} as a duration", "Use e.g. 30s, 5m, 2h, 7d.")
    return float(m.group(1)) * _UNITS[m.group(2)]


def parse_time(text: str, what: str) -> int:
    """Epoch ms of an ISO-8601 date/time (UTC unless an offset is given) or of ``now - DURATION``."""
    try:
        dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
        return int((dt if dt.tzinfo else dt.replace(tzinfo=UTC)).timestamp() * 1000)
    except ValueError:
        pass
    try:
        ago = parse_duration(text.removesuffix("ago").strip(), what)
    except UsageError:
        raise UsageError(
            f"{what}: cannot read {text!r} as a time",
            "Use ISO-8601 (2025-01-06T14:30:00Z) or a duration back from now (24h, 7d).",
        ) from None
    return int((datetime.now(UTC) - timedelta(seconds=ago)).timestamp() * 1000)


def _setup_logging() -> None:
    root = logging.getLogger("rtfin")
    root.setLevel(logging.INFO)
    if root.handlers:
        return
    if is_tty():
        from rich.logging import RichHandler

        root.addHandler(RichHandler(console=err_console, show_path=False, rich_tracebacks=False))
    else:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s level=%(levelname)s logger=%(name)s %(message)s"))
        root.addHandler(handler)
    root.propagate = False


def ticker_list(text: str | None, option: str) -> list[str] | None:
    """Upper-cased symbols of a comma list; None when the option was not given. Blank is an error."""
    if text is None:
        return None
    names = [t.strip().upper() for t in text.split(",") if t.strip()]
    if not names:
        raise UsageError(
            f"{option} is empty", f"Give ticker symbols, e.g. {option} AAPL,MSFT, or leave the option out."
        )
    return names


def _finish(stats: Stats, as_json: bool) -> None:
    if as_json:
        print_json(stats.as_dict())
    else:
        logging.getLogger("rtfin.producers.status").info("stopped: " + producer_line(stats.as_dict()))


@app.command()
def news(
    since: Annotated[
        str | None, typer.Option(help="Backfill from this time (ISO-8601 or 24h/7d ago).")
    ] = None,
    until: Annotated[
        str | None, typer.Option(help="Stop at this published time (exclusive); one pass.")
    ] = None,
    once: Annotated[bool, typer.Option("--once", help="One pass over what is available, then exit.")] = False,
    interval: Annotated[
        str | None, typer.Option(help="Time between polls (default polygon.poll_interval_s).")
    ] = None,
    tickers: Annotated[
        str | None, typer.Option(help="Only articles mentioning these tickers (AAPL,MSFT).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the final counters as JSON.")] = False,
) -> None:
    """Poll the news REST API into rtfin.news.raw (resumes from the newest article already in the topic)."""
    import threading

    from rtfin_cli.producers.news import NewsOptions, run_news
    from rtfin_cli.producers.sink import stop_on_signals

    opts = NewsOptions(
        since_ms=parse_time(since, "--since") if since is not None else None,
        until_ms=parse_time(until, "--until") if until is not None else None,
        once=once,
        interval_s=parse_duration(interval, "--interval") if interval is not None else None,
        tickers=ticker_list(tickers, "--tickers"),
    )
    if opts.since_ms and opts.until_ms and opts.until_ms <= opts.since_ms:
        raise UsageError("--until must be later than --since")
    _setup_logging()
    stop = threading.Event()
    stop_on_signals(stop)
    with reporter_for(PRODUCE, as_json=as_json, title="rtfin produce news") as reporter:
        stats = run_news(settings(), opts, stop, reporter)
    _finish(stats, as_json)


@app.command()
def stocks(
    tickers: Annotated[
        str | None, typer.Option(help="Tickers to subscribe (AAPL,MSFT); default every ticker.")
    ] = None,
    all_: Annotated[
        bool, typer.Option("--all", help="Every ticker (the default without --tickers).")
    ] = False,
    events: Annotated[str, typer.Option(help="Event types: AM (minute), A (second) or AM,A.")] = "AM",
    as_json: Annotated[bool, typer.Option("--json", help="Print the final counters as JSON.")] = False,
) -> None:
    """Stream WebSocket aggregates into rtfin.stocks.aggs (keyed by ticker, timestamp = bar end).

    Every drop reconnects; minute bars missed meanwhile, and since the topic's last bar at start, are repaired from the aggregates REST API.

    Second aggregates (A) cannot be repaired. Counters (connects, reconnects, longest disconnected span, bars repaired) are printed on every exit.
    """
    from rtfin_cli.producers.sink import Stats
    from rtfin_cli.producers.stocks import run_stocks
    from rtfin_cli.sources.stocks import subscriptions

    names = ticker_list(tickers, "--tickers")
    if names and all_:
        raise UsageError("--tickers and --all are exclusive")
    channels = subscriptions(names, [e.strip().upper() for e in events.split(",") if e.strip()])
    _setup_logging()
    title = "rtfin produce stocks " + ",".join(channels)
    stats = Stats(source="polygon.stocks")
    try:
        with reporter_for(PRODUCE, as_json=as_json, title=title) as reporter:
            run_stocks(settings(), channels, reporter, stats=stats)
    finally:
        _finish(stats, as_json)
