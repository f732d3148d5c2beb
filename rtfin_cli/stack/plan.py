"""The local stack's plan: which stages run, in what order, through which ``rtfin`` command.

Every stage is one ``rtfin`` command run as a supervised process (pid file under ``<data_dir>/run/``,
log under ``<data_dir>/logs/``). A stage is one of three kinds:

- ``daemon``: a ``rtfin local X start`` command that starts its own supervised server, waits until it is
  ready and returns (Kafka, ClickHouse, the market replay server, Superset);
- ``process``: a long-running command supervised by the stack (producers, sentiment job, loader, the
  dbt refresher, the watchdog);
- ``oneshot``: a command that runs to completion (topics, DDL, first dbt build, dashboard sync).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, fields
from enum import StrEnum
from pathlib import Path
from typing import Any

from rtfin_cli.sentiment.scoring import OFFLINE_MODEL
from rtfin_cli.settings import RtfinSettings

REFRESH_INTERVAL_S = 30.0  # default period of the dbt refresher (the dashboard refreshes every 30 s)
REFRESH_SELECT = ("path:models/marts",)  # what the refresher rebuilds (tables and incremental models)


class StepKind(StrEnum):
    """How the stack runs a stage (see the module docstring)."""

    DAEMON = "daemon"
    PROCESS = "process"
    ONESHOT = "oneshot"


@dataclass(frozen=True)
class Step:
    """One stage of the local stack."""

    name: str
    kind: StepKind
    argv: tuple[str, ...]
    ports: tuple[int, ...] = ()
    timeout: float = 300.0
    module: str = "rtfin_cli"  # `python -m module argv`
    what: str = ""
    covered_by: str | None = None  # a one-shot stage not re-run while this service runs
    early: bool = False  # a server whose start begins with `up` (awaited at its place in the order)

    def command(self) -> list[str]:
        return [sys.executable, "-m", self.module, *self.argv]

    @staticmethod
    def from_dict(d: dict[str, Any]) -> Step:
        """A step as saved in stack.json (keys this version does not know are ignored)."""
        known = {f.name for f in fields(Step)}
        values = {k: v for k, v in d.items() if k in known}
        values.update(kind=StepKind(d["kind"]), argv=tuple(d["argv"]), ports=tuple(d["ports"]))
        return Step(**values)


def _daemon(
    name: str,
    ports: tuple[int, ...],
    what: str,
    ready_s: int,
    *,
    early: bool = False,
    extra: tuple[str, ...] = (),
) -> Step:
    """A ``rtfin local NAME start`` stage, given ``ready_s`` to be ready (and a minute more to return)."""
    argv = ("local", name, "start", "--timeout", str(ready_s), *extra)
    return Step(name, StepKind.DAEMON, argv, ports, timeout=ready_s + 60.0, what=what, early=early)


def _selects(selectors: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(arg for sel in selectors for arg in ("--select", sel))


def plan(
    s: RtfinSettings,
    *,
    with_dashboard: bool = False,
    no_model: bool = False,
    refresh_s: float = REFRESH_INTERVAL_S,
    replay_from: str | None = None,
) -> list[Step]:
    """The stages in start order (stop order is the reverse)."""
    loc = s.local
    process, oneshot = StepKind.PROCESS, StepKind.ONESHOT
    replay = ("--start", replay_from) if replay_from else ()
    steps = [
        _daemon("kafka", (loc.kafka_port, loc.kafka_controller_port), "Apache Kafka (KRaft)", 240),
        _daemon("clickhouse", (loc.clickhouse_port,), "ClickHouse HTTP endpoint (chDB)", 180),
        _daemon("market", (loc.market_port,), "market replay server", 120, extra=replay),
        Step("topics", oneshot, ("topics", "create"), timeout=120, what="Kafka topics"),
        Step("ddl", oneshot, ("transform", "ddl"), timeout=180, what="ClickHouse raw tables"),
        Step("news", process, ("produce", "news"), what="news producer"),
        Step("stocks", process, ("produce", "stocks"), what="stocks producer"),
    ]
    if not no_model:
        steps.append(Step("sentiment", process, ("sentiment", "run"), what="sentiment job (Spark local)"))
    steps += [
        Step("loader", process, ("transform", "load"), what="Kafka to ClickHouse loader"),
        Step("models", oneshot, ("transform", "run"), timeout=900, what="first dbt build", covered_by="dbt"),
        # The reporting views read the raw tables (fresh as soon as loaded); only the marts are rebuilt.
        Step("dbt", process, ("local", "_refresh", "--interval", str(refresh_s), *_selects(REFRESH_SELECT)),
             what=f"dbt build of the marts every {refresh_s:g}s"),
    ]  # fmt: skip
    if with_dashboard:
        steps += [
            _daemon("superset", (loc.superset_port,), "Superset", 800, early=True),
            Step("dashboard", oneshot, ("dashboard", "sync"), timeout=300, what="dashboard sync"),
        ]
    # first, so stages that crash while later ones start are restarted too (it waits for `up`'s lock)
    watchdog = Step("watchdog", process, ("local", "_watch"), what="restarts crashed stages")
    return [watchdog, *steps]


# Spark's JVM in the stack: the serial collector (G1's own structures are ~45 MB), C1 only (no C2 compiler or
# profiles), a heap that starts small and gives back what a batch no longer needs (docs/benchmarks.md).
LEAN_JAVA_OPTIONS = (
    "-XX:+UseSerialGC -XX:TieredStopAtLevel=1 -XX:ReservedCodeCacheSize=48m -Xms16m "
    "-XX:MinHeapFreeRatio=5 -XX:MaxHeapFreeRatio=20"
)
LEAN_DRIVER_MEMORY = "256m"  # 5,000-row batches of 1.2 KB articles peak at ~90 MB live (docs/benchmarks.md)


def lean_sentiment_env(s: RtfinSettings) -> dict[str, str]:
    """The sentiment job's memory-lean defaults for the stack, for each setting the user did not choose:
    the offline model as ONNX int8 (a third of torch's memory, the same labels), one Python worker (a
    dev stack's news rate needs no second copy of the model), a 256 MB driver heap and lean JVM options
    (docs/benchmarks.md)."""
    chosen, env = s.sentiment.model_fields_set, {}
    if s.sentiment.model == OFFLINE_MODEL and "runtime" not in chosen:
        env["RTFIN__SENTIMENT__RUNTIME"] = "onnx"
    if "workers" not in chosen:
        env["RTFIN__SENTIMENT__WORKERS"] = "1"
    if "driver_memory" not in chosen:
        env["RTFIN__SENTIMENT__DRIVER_MEMORY"] = LEAN_DRIVER_MEMORY
    if "java_options" not in chosen:
        env["RTFIN__SENTIMENT__JAVA_OPTIONS"] = LEAN_JAVA_OPTIONS
    return env


def stack_env(s: RtfinSettings, speed: float | None = None) -> dict[str, str]:
    """Environment for every stage: clients point at the local services' ports from settings [local]."""
    loc = s.local
    env = {
        "RTFIN__LOCAL__DATA_DIR": str(loc.path()),
        "RTFIN__LOCAL__CACHE_DIR": str(Path(loc.cache_dir).expanduser().resolve()),
        "RTFIN__KAFKA__BOOTSTRAP": f"127.0.0.1:{loc.kafka_port}",
        "RTFIN__CLICKHOUSE__HOST": "127.0.0.1",
        "RTFIN__CLICKHOUSE__PORT": str(loc.clickhouse_port),
        "RTFIN__CLICKHOUSE__SECURE": "false",
        "RTFIN__POLYGON__REST_URL": f"http://127.0.0.1:{loc.market_port}",
        "RTFIN__POLYGON__WS_URL": f"ws://127.0.0.1:{loc.market_port}/stocks",
        "RTFIN__DASHBOARD__BACKEND": "superset",
        "RTFIN__DASHBOARD__URL": f"http://127.0.0.1:{loc.superset_port}",
        "PYTHONUNBUFFERED": "1",
        "SPARK_LOCAL_IP": "127.0.0.1",  # Spark's driver and UI bind to loopback, like every local service
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
    }
    if speed is not None:
        env["RTFIN__LOCAL__MARKET_SPEED"] = str(speed)
    env.update(lean_sentiment_env(s))
    assets = Path(s.dashboard.assets_dir).expanduser()
    if not assets.is_absolute():  # stages may run from any directory: use the checkout's assets
        checkout = Path(__file__).resolve().parents[2] / assets
        env["RTFIN__DASHBOARD__ASSETS_DIR"] = str(assets.resolve() if assets.exists() else checkout)
    return env
