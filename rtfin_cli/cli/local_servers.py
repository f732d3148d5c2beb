"""`rtfin local kafka|clickhouse|market|superset start|stop|status`: the four local servers.

Each is a :class:`ServerView` turned into commands by :func:`server_app`; the market replay server's
start keeps its own options (speed, rate limit, start time).
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from rtfin_cli.cli.common import settings
from rtfin_cli.cli.local_server import Server, ServerView, server_app, start_server, uptime
from rtfin_cli.errors import UsageError

# -- Kafka -------------------------------------------------------------------------------------------


def _kafka() -> Server:
    from rtfin_cli.local.kafka import from_settings

    return from_settings(settings().local)


KAFKA = ServerView(
    name="kafka",
    label="Kafka",
    help="The local Apache Kafka broker (KRaft, single node).",
    build=_kafka,
    where=lambda b: f"bootstrap {b.bootstrap}",
    info=lambda b, st: {"service": "kafka", "running": st.running, "pid": st.pid, "bootstrap": b.bootstrap,
                        "uptime_s": uptime(st), "log": str(st.log)},
    running=lambda b, st, info: f"Kafka [green]running[/] pid {st.pid} on {b.bootstrap}, up {info['uptime_s']}s",
    ready=lambda b, pid, took: [f"[green]Kafka ready[/] on {b.bootstrap} (pid {pid}) in {took:.1f}s"],
    starting=lambda b: f"starting Kafka on {b.bootstrap} ...",
    start_doc="Start the broker and wait until it accepts metadata requests.",
    stop_doc="Stop the broker (SIGTERM, then SIGKILL after a timeout).",
    status_doc="Whether the broker runs, its pid, port and uptime.",
    start_timeout=90.0,
)  # fmt: skip

# -- ClickHouse --------------------------------------------------------------------------------------


def _clickhouse() -> Server:
    from rtfin_cli.local.clickhouse import from_settings

    s = settings()
    return from_settings(s.local, s.clickhouse)


def _clickhouse_info(server: Server, st: Any) -> dict[str, Any]:
    answering = st.running and server.healthy()
    return {"service": "clickhouse", "running": st.running, "answering": answering, "pid": st.pid,
            "url": server.url, "uptime_s": uptime(st), "data_dir": str(server.home), "log": str(st.log)}  # fmt: skip


def _clickhouse_running(server: Server, st: Any, info: dict[str, Any]) -> str:
    state = "[green]running[/]" if info["answering"] else "[yellow]running, not answering[/]"
    return f"ClickHouse {state} pid {st.pid} on {server.url}, up {info['uptime_s']}s"


CLICKHOUSE = ServerView(
    name="clickhouse",
    label="ClickHouse",
    help="The local ClickHouse endpoint (chDB behind the HTTP protocol).",
    build=_clickhouse,
    where=lambda c: c.url,
    info=_clickhouse_info,
    running=_clickhouse_running,
    ready=lambda c, pid, took: [f"[green]ClickHouse ready[/] on {c.url} (pid {pid}) in {took:.1f}s; "
                                f"user {c.user}, password in {c.home / 'password'}"],
    starting=lambda c: f"starting ClickHouse endpoint on {c.url} ...",
    start_doc="Start the endpoint and wait until it answers queries (generates its password on first start).",
    stop_doc="Stop the endpoint (SIGTERM: finishes in-flight requests, closes chDB cleanly).",
    status_doc="Whether the endpoint runs, its pid, URL, uptime and whether it answers a query (SELECT 1).",
    start_timeout=60.0,
)  # fmt: skip

# -- market replay -----------------------------------------------------------------------------------


def _market(**overrides: Any) -> Server:
    from rtfin_cli.local.market.service import from_settings

    return from_settings(settings().local, **overrides)


def _market_info(server: Server, st: Any) -> dict[str, Any]:
    info: dict[str, Any] = {"service": "market", "running": st.running, "pid": st.pid, "url": server.url,
                            "uptime_s": uptime(st), "log": str(st.log)}  # fmt: skip
    if st.running:
        try:
            info["replay"] = server.control("status", timeout=3)
        except Exception as exc:  # noqa: BLE001 - report, do not fail status
            info["replay_error"] = str(exc)
    return info


def _market_running(server: Server, st: Any, info: dict[str, Any]) -> str:
    r = info.get("replay") or {}
    emitted = r.get("emitted", {})
    return (
        f"market replay [green]running[/] pid {st.pid} on {server.url}, up {info['uptime_s']}s; "
        f"market time {r.get('now')} (speed {r.get('speed')}), {r.get('connections')} WebSocket "
        f"connection(s), served {emitted.get('articles')} articles and {emitted.get('bars')} bars"
    )


def _market_ready(server: Server, pid: int, took: float) -> list[str]:
    st = server.control("status")
    return [
        f"[green]market replay ready[/] on {server.url} (pid {pid}), speed {server.speed:g}, "
        f"market time {st['now']}, {st['articles_visible']} articles visible"
    ]


MARKET = ServerView(
    name="market",
    label="market replay",
    help="The local market replay server (Polygon/Massive protocol).",
    build=_market,
    where=lambda m: m.url,
    info=_market_info,
    running=_market_running,
    ready=_market_ready,
    start_doc="Start the replay server on 127.0.0.1:local.market_port and wait until it answers.",
    stop_doc="Stop the replay server.",
    status_doc="Whether the server runs, its replay clock, connections and what it has served.",
    start_timeout=30.0,
)


def market_start(
    speed: Annotated[float | None, typer.Option(help="Replay speed (60 = one market hour a minute).")] = None,
    rate_limit: Annotated[
        float | None, typer.Option(help="REST requests/s before HTTP 429 (0 = off).")
    ] = None,
    start_at: Annotated[
        str | None, typer.Option("--start", help="Dataset time to start at (2025-01-06..19).")
    ] = None,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for readiness.")] = MARKET.start_timeout,
) -> None:
    if speed is not None and speed <= 0:
        raise UsageError("--speed must be > 0")
    start_server(MARKET, _market(speed=speed, rate_limit=rate_limit, start_at=start_at), timeout)


# -- Superset ----------------------------------------------------------------------------------------


def _superset() -> Server:
    from rtfin_cli.local.superset import from_settings

    return from_settings(settings().local)


def _superset_info(sup: Server, st: Any) -> dict[str, Any]:
    try:
        healthy = st.running and sup.ready()
    except Exception:  # noqa: BLE001 - not answering
        healthy = False
    return {"service": "superset", "running": st.running, "healthy": healthy, "pid": st.pid, "url": sup.url,
            "uptime_s": uptime(st), "log": str(st.log)}  # fmt: skip


def _superset_running(sup: Server, st: Any, info: dict[str, Any]) -> str:
    state = "[green]running[/]" if info["healthy"] else "[yellow]running, not healthy yet[/]"
    return f"Superset {state} pid {st.pid} on {sup.url}, up {info['uptime_s']}s"


def _superset_ready(sup: Server, pid: int, took: float) -> list[str]:
    lines = [f"[green]Superset ready[/] on {sup.url} (pid {pid}) in {took:.1f}s"]
    if sup.new_password:
        # shown once; kept 0600 under the data dir, where `rtfin dashboard sync` picks it up
        lines.append(
            f"admin user [bold]admin[/], password [bold]{sup.new_password}[/] (stored in {sup.password_file})"
        )
    else:
        lines.append(f"admin user admin, password in {sup.password_file}")
    return lines


SUPERSET = ServerView(
    name="superset",
    label="Superset",
    help="The local Superset (its own virtualenv, sqlite metadata under .rtfin/).",
    build=_superset,
    where=lambda sup: sup.url,
    info=_superset_info,
    running=_superset_running,
    ready=_superset_ready,
    starting=lambda sup: f"starting Superset on {sup.url} (first start initialises it: ~1 min) ...",
    start_doc="Start Superset (initialising its metadata db and admin user on first use) and wait for /health.",
    stop_doc="Stop Superset (SIGTERM, then SIGKILL after a timeout).",
    status_doc="Whether Superset runs, its pid, URL, uptime and whether /health answers.",
    start_timeout=180.0,
)

APPS = {
    "kafka": server_app(KAFKA),
    "clickhouse": server_app(CLICKHOUSE),
    "market": server_app(MARKET, start=market_start),
    "superset": server_app(SUPERSET),
}
