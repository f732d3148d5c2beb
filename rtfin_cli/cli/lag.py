"""`rtfin lag`: live view of consumer lag, time lag and end-to-end data age."""

from __future__ import annotations

import contextlib
import datetime as dt
import signal
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console, Group
from rich.table import Table
from rich.text import Text

from rtfin_cli.cli.common import console, out_console, print_json, settings
from rtfin_cli.errors import ServiceUnavailable, ThresholdExceeded

if TYPE_CHECKING:
    from rtfin_cli.lag.model import GroupLag, Hop, PartitionLag, Snapshot, Stage
    from rtfin_cli.lag.snapshot import Options
    from rtfin_cli.settings import LagSettings

COLOURS = {
    "IDLE": "cyan",
    "OK": "green",
    "LAGGING": "yellow",
    "STALLED": "bold red",
    "MISSING": "magenta",
    "UNREACHABLE": "bold red",
}


def fmt_age(seconds: float | None) -> str:
    """12.3s, 4m05s, 2h13m, 3d04h; '-' when unknown; a leading '-' when the event lies ahead of the clock."""
    if seconds is None:
        return "-"
    if seconds < 0:
        return "-" + fmt_age(-seconds)
    if seconds < 60:
        return f"{seconds:.1f}s" if seconds < 10 else f"{seconds:.0f}s"
    m, s = divmod(int(seconds), 60)
    if m < 60:
        return f"{m}m{s:02d}s"
    h, m = divmod(m, 60)
    return f"{h}h{m:02d}m" if h < 24 else f"{h // 24}d{h % 24:02d}h"


def _rate(value: float | None) -> str:
    return "-" if value is None else f"{value:,.1f}"


def _state(state: str) -> Text:
    return Text(state, style=COLOURS.get(state, ""))


def _header(snap: Snapshot) -> Text:
    t = snap.totals()
    when = dt.datetime.fromtimestamp(snap.taken_at, dt.UTC).strftime("%H:%M:%S UTC")
    kafka = snap.kafka
    head = Text()
    head.append("rtfin lag", style="bold")
    head.append(f"  Kafka {kafka['bootstrap']} ")
    if kafka["status"] != "ok":
        head.append("UNREACHABLE", style="bold red")
        head.append(f" ({kafka['error']})", style="dim")
    else:
        head.append(f"· lag {t['lag']:,} msgs · oldest {fmt_age(t['max_time_lag_s'])} · ")
        for i, (state, n) in enumerate(sorted(t["states"].items())):
            head.append(("  " if i else "") + f"{state} {n}", style=COLOURS.get(state, ""))
    head.append(f"\nupdated {when} in {snap.took_s:.2f}s", style="dim")
    clock = snap.clock
    if clock.get("replay"):
        replay = dt.datetime.fromtimestamp(clock["now"], dt.UTC).strftime("%a %H:%M:%S")
        head.append(f" · replay ×{clock['speed']:g} at {replay}", style="dim")
    th = snap.thresholds
    head.append(f" · LAGGING above {th.max_lag} msgs or {fmt_age(th.max_age_s)}", style="dim")
    return head


# '>' right-justifies a column; '~' (the detail) takes the width left and ends in an ellipsis; '*' only --wide
GROUP_COLUMNS = ["group", "topic", "*>members", ">lag", ">time lag", "*>consume/s", "*>produce/s", "*trend",
                 "*>drain ETA", "state", "~detail"]  # fmt: skip
STAGE_COLUMNS = ["stage", "*measured on", "state", "*>lag", "*>time lag", ">age", "~detail"]
ARROWS = {"growing": "↑ growing", "shrinking": "↓ shrinking", "steady": "→ steady"}
NAME_WIDTH = 18  # group and topic names in the default view (the rest behind an ellipsis)


def _table(title: str, columns: list[str], wide: bool) -> tuple[Table, list[bool]]:
    """The table with the columns the view shows, and for each spec whether it is shown."""
    from rich import box

    table = Table(title=title, title_justify="left", expand=True, box=box.SIMPLE_HEAD, pad_edge=False)
    shown = [wide or not spec.startswith("*") for spec in columns]
    for spec, show in zip(columns, shown, strict=True):
        name = spec.lstrip("*>~")
        if not show:
            continue
        if "~" in spec:
            table.add_column(name, no_wrap=True, overflow="ellipsis", ratio=1, min_width=6)
        else:
            cap = None if wide or ">" in spec or name == "state" else NAME_WIDTH
            table.add_column(name, justify="right" if ">" in spec else "left", no_wrap=True,
                             overflow="ellipsis", min_width=len(name), max_width=cap)  # fmt: skip
    return table, shown


def _pick(cells: list[Any], shown: list[bool]) -> list[Any]:
    return [c for c, show in zip(cells, shown, strict=True) if show]


def _cells(x: GroupLag | PartitionLag) -> list[str]:
    """members is filled in by the caller; then lag, time lag, consume/s, produce/s, trend, drain ETA."""
    eta = fmt_age(x.eta_s) if x.lag else "-"
    return [f"{x.lag:,}", fmt_age(x.time_lag_s), _rate(x.consume_rate), _rate(x.produce_rate),
            ARROWS.get(x.trend, "…"), eta]  # fmt: skip


def groups_table(rows: list[GroupLag], wide: bool) -> Table:
    table, shown = _table("consumer groups", GROUP_COLUMNS, wide)
    for r in rows:
        detail = Text(r.detail, style="dim")
        table.add_row(*_pick([r.group, r.topic, str(r.members), *_cells(r), _state(r.state), detail], shown))
        if wide:
            for p in r.partitions:
                where = f"  [{p.partition}] {'-' if p.committed is None else p.committed}/{p.end}"
                table.add_row("", where, "", *_cells(p), _state(p.state), "", style="dim")
    if not rows:
        table.add_row("(no consumer groups)", *[""] * (sum(shown) - 1), style="dim")
    return table


def _short_name(s: Stage) -> str:
    """A table stage by its table (raw.news, rpt_latest_news) when the 'measured on' column is hidden."""
    if s.name in ("warehouse", "reporting") and "://" not in s.source and s.source.count(".") >= 2:
        table = s.source.split(".")[1]
        return table if table.startswith("rpt_") else f"raw.{table}"
    return s.name


def stages_table(stages: list[Stage], wide: bool) -> Table:
    table, shown = _table("pipeline (end-to-end freshness)", STAGE_COLUMNS, wide)
    for s in stages:
        lag = "-" if s.lag is None else f"{s.lag:,}"
        age = s.age_s if s.age_s is not None or wide else s.time_lag_s  # default view: one age column
        cells = [s.name if wide else _short_name(s), s.source, _state(s.state), lag, fmt_age(s.time_lag_s), fmt_age(age),
                 Text(s.detail, style="dim")]  # fmt: skip
        table.add_row(*_pick(cells, shown))
    return table


def hops_table(hops: list[Hop]) -> Table:
    table, _ = _table("per-hop latency over the window (wall seconds)", ["pipeline", "hop", ">rows", ">p50",
                                                                       ">p95"], wide=True)  # fmt: skip
    for h in hops:
        table.add_row(h.pipeline, h.hop, f"{h.rows:,}", fmt_age(h.p50_s), fmt_age(h.p95_s))
    return table


def render(snap: Snapshot, wide: bool) -> Group:
    parts: list[Any] = [_header(snap), groups_table(snap.groups, wide)]
    if snap.stages:
        parts.append(stages_table(snap.stages, wide))
    if snap.hops:
        parts.append(hops_table(snap.hops))
    if snap.exceeded:
        parts.append(Text("threshold exceeded: " + "; ".join(snap.exceeded), style="bold red"))
    return Group(*parts)


def log_lines(snap: Snapshot) -> list[str]:
    """Line-oriented output when stdout is not a terminal."""
    when = dt.datetime.fromtimestamp(snap.taken_at, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    t = snap.totals()
    if snap.kafka["status"] != "ok":
        return [f"{when} kafka={snap.kafka['bootstrap']} UNREACHABLE {snap.kafka['error']}"]
    states = " ".join(f"{k}={v}" for k, v in sorted(t["states"].items()))
    out = [f"{when} rows={t['rows']} lag={t['lag']} max_time_lag_s={t['max_time_lag_s']:.1f} {states}"]
    out += [
        f"{when} {r.group} {r.topic} lag={r.lag} time_lag_s={r.time_lag_s:.1f} state={r.state} {r.detail}"
        for r in snap.groups
    ]
    out += [f"{when} stage={s.name} source={s.source} state={s.state} age_s={s.age_s}" for s in snap.stages]
    return out


def lag(
    group: Annotated[
        list[str] | None, typer.Option("--group", "-g", help="Only this consumer group (repeatable).")
    ] = None,
    topic: Annotated[
        list[str] | None, typer.Option("--topic", "-t", help="Only this topic (repeatable).")
    ] = None,
    interval: Annotated[str | None, typer.Option(help="Refresh period, e.g. 2s [lag.interval_s].")] = None,
    window: Annotated[
        str | None, typer.Option(help="Window for rates, trend and STALLED, e.g. 30s [lag.window_s].")
    ] = None,
    once: Annotated[
        bool, typer.Option("--once", help="Print one snapshot and exit (exit codes apply).")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="JSON snapshots, one document per line.")] = False,
    wide: Annotated[
        bool,
        typer.Option("--wide", help="Every column and one row per partition (default: fits 80 columns)."),
    ] = False,
    only_lagging: Annotated[
        bool, typer.Option("--only-lagging", help="Hide rows that are caught up.")
    ] = False,
    max_lag: Annotated[
        int | None, typer.Option(help="Threshold in messages: LAGGING above it; --once exits 8.")
    ] = None,
    max_age: Annotated[
        str | None, typer.Option(help="Time-lag threshold, e.g. 30s: LAGGING above it; --once exits 8.")
    ] = None,
    pipeline: Annotated[bool, typer.Option(help="Show the pipeline stages and warehouse data age.")] = True,
    hops: Annotated[
        bool, typer.Option("--hops", help="Per-hop latency p50/p95 of each pipeline over the window.")
    ] = False,
) -> None:
    """Live view of consumer lag, time lag and end-to-end data age (IDLE/OK/LAGGING/STALLED/MISSING)."""
    from rtfin_cli.lag.model import parse_duration
    from rtfin_cli.lag.snapshot import Monitor, Options

    s = settings()
    every = parse_duration(interval if interval is not None else s.lag.interval_s, "--interval")
    opts = Options(
        groups=list(group or []),
        topics=list(topic or []),
        only_lagging=only_lagging,
        pipeline=pipeline,
        hops=hops,
    )
    _thresholds(opts, s.lag, window, max_lag, max_age)
    if once:
        monitor = Monitor(s, opts)
        try:
            _once(monitor, as_json, wide)
        finally:
            monitor.close()
        return
    from rtfin_cli.lag.isolated import IsolatedMonitor

    live = IsolatedMonitor(s, opts, answer_s=max(60.0, 12 * s.kafka.timeout_s))  # a native crash ends a child
    try:
        _live(live, every, as_json, wide)
    finally:
        live.close()


def _thresholds(
    opts: Options, cfg: LagSettings, window: str | None, max_lag: int | None, max_age: str | None
) -> None:
    """The window and the view's thresholds (options over settings); explicit ones also set the exit code."""
    from rtfin_cli.lag.model import Thresholds, parse_duration

    age = parse_duration(max_age, "--max-age") if max_age is not None else None
    if max_lag is not None and max_lag < 0:
        from rtfin_cli.errors import UsageError

        raise UsageError(f"--max-lag must be >= 0 (got {max_lag})")
    opts.window_s = parse_duration(window if window is not None else cfg.window_s, "--window")
    opts.thresholds = Thresholds(max_lag if max_lag is not None else cfg.max_lag, age or cfg.max_age_s)
    opts.check = Thresholds(max_lag, age)


def _once(monitor: Any, as_json: bool, wide: bool) -> None:
    snap = monitor.once()
    if as_json:
        print_json(snap.as_dict(wide))
    else:
        _out().print(render(snap, wide))
    if snap.kafka["status"] != "ok":
        raise ServiceUnavailable(
            snap.kafka["error"], "Start it with `rtfin local kafka start` or check kafka.bootstrap."
        )
    if snap.exceeded:
        more = f" (+{len(snap.exceeded) - 1} more)" if len(snap.exceeded) > 1 else ""
        raise ThresholdExceeded(
            f"threshold exceeded: {snap.exceeded[0]}{more}", "Run `rtfin lag` to watch it live."
        )


def _out() -> Console:
    return out_console()


def snapshot_or_failure(monitor: Any) -> tuple[Snapshot | None, str]:
    """The next snapshot, or why it failed: a live view outlives any one failed refresh (each reader
    already turns an unreachable service into a state; this is the net for anything else)."""
    try:
        return monitor.snapshot(), ""
    except Exception as exc:  # noqa: BLE001 - shown, then the next refresh tries again
        when = dt.datetime.now(dt.UTC).strftime("%H:%M:%S UTC")
        return None, f"{when} rtfin lag: this refresh failed ({type(exc).__name__}: {exc}); retrying"


def _print_lines(snap: Snapshot | None, failed: str, as_json: bool, wide: bool) -> None:
    """One refresh as a JSON document or as log lines (stdout not a terminal)."""
    if as_json:
        print_json(snap.as_dict(wide) if snap is not None else {"error": failed})
        return
    for line in log_lines(snap) if snap is not None else [failed]:
        console.print(line, soft_wrap=True, markup=False, highlight=False)


@contextlib.contextmanager
def _view(as_json: bool, wide: bool) -> Iterator[Callable[[Snapshot | None, str], None]]:
    """How each refresh is shown: printed lines, or the terminal's live view redrawn in place."""
    if as_json or not console.is_terminal:
        yield lambda snap, failed: _print_lines(snap, failed, as_json, wide)
        return
    from rich.live import Live

    with Live(console=console, auto_refresh=False, transient=False, vertical_overflow="crop") as live:
        yield lambda snap, failed: live.update(
            render(snap, wide) if snap is not None else Text(failed, style="bold red"), refresh=True
        )


def _live(monitor: Any, every: float, as_json: bool, wide: bool) -> None:
    """Refreshes until Ctrl-C or SIGTERM; both interrupt a refresh in flight, so a stop is prompt even
    while the probe waits on a broker that is down."""
    previous = signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        with _view(as_json, wide) as show:
            while True:
                t0 = time.monotonic()
                show(*snapshot_or_failure(monitor))
                time.sleep(max(0.0, every - (time.monotonic() - t0)))
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
