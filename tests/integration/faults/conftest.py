"""A small real pipeline for fault injection: its own Kafka broker, ClickHouse endpoint and replay server
(free ports, temp dir; the tests kill and stop them, so they are not the session fixtures), and the news
producer, stocks producer and loader as supervised `rtfin` processes (rtfin_cli.local.supervisor.Service).

Every check compares what the replay server served (``/_control/emitted``) with the raw tables read with
FINAL; results accumulate into tests/artifacts/faults.json (the README's reliability table).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from rtfin_cli.local.clickhouse import ClickHouseServer
from rtfin_cli.local.kafka import KafkaBroker
from rtfin_cli.local.market.service import MarketServer
from rtfin_cli.local.supervisor import Service, free_port, pid_alive
from tests.conftest import CACHE, ROOT, run_cli

TICKERS = "AAPL,MSFT,NVDA,JPM,XOM"
SPEED = 90.0  # replay: 1.5 market minutes per wall second (5 tickers: 7.5 bars/s); a session lasts ~4 min
ARTIFACT = ROOT / "tests" / "artifacts" / "faults.json"
COMMANDS = {
    "news": ("produce", "news", "--interval", "1s"),
    "stocks": ("produce", "stocks", "--tickers", TICKERS),
    "loader": ("transform", "load"),
}


@dataclass
class Pipeline:
    """The running services and helpers to drive faults and check the outcome."""

    root: Path
    kafka: KafkaBroker
    clickhouse: ClickHouseServer
    market: MarketServer
    env: dict[str, str]
    results: list[dict[str, Any]] = field(default_factory=list)
    lost: set[str] = field(default_factory=set)  # bars known lost in flight (stocks producer SIGKILL)

    @property
    def data_dir(self) -> Path:
        return self.root / ".rtfin"

    def service(self, name: str) -> Service:
        return Service(name, self.data_dir)

    def start(self, name: str) -> int:
        cmd = [sys.executable, "-m", "rtfin_cli", *COMMANDS[name]]
        return self.service(name).start(cmd, env=self.env, cwd=self.root)

    def sigkill(self, name: str) -> None:
        pid = self.service(name).pid()
        assert pid is not None, f"{name} is not running: {self.service(name).log_tail(5)}"
        os.killpg(pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while pid_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not pid_alive(pid), f"{name} survived SIGKILL"
        self.service(name).pid()  # drops the stale pid file

    def cli(self, *args: str, timeout: float = 180) -> Any:
        return run_cli(*args, env=self.env, cwd=self.root, timeout=timeout)

    def logs(self) -> str:
        return "\n".join(f"---- {n} ----\n{self.service(n).log_tail(15)}" for n in (*COMMANDS, "market"))

    # -- replay control ------------------------------------------------------------------------------
    def flow(self, speed: float = SPEED) -> None:
        self.market.control("clock", {"speed": speed})

    def pause(self) -> None:
        self.market.control("clock", {"speed": 0})

    def emitted(self) -> tuple[set[str], set[str]]:
        """(article ids, bar keys 'AM|SYM|s') the replay server has served so far."""
        doc = self.market.control("emitted", timeout=30)
        return set(doc["articles"]) - set(doc["malformed_articles"]), set(doc["bars"])

    # -- warehouse -----------------------------------------------------------------------------------
    def rows(self, sql: str) -> list[str]:
        return [line for line in self.clickhouse.query(sql, timeout=60).splitlines() if line]

    def loaded(self, final: bool = True) -> tuple[list[str], list[str]]:
        """(article ids, bar keys) in the raw tables; with FINAL as readers see them."""
        fin = " FINAL" if final else ""
        news = self.rows(f"SELECT id FROM rtfin_raw.news{fin} FORMAT TabSeparated")
        bars = self.rows(
            f"SELECT concat(ev, '|', sym, '|', toString(s)) FROM rtfin_raw.stock_aggs{fin} FORMAT TabSeparated"
        )
        return news, bars

    def missing(self) -> tuple[set[str], set[str]]:
        arts, bars = self.emitted()
        news, got = self.loaded()
        return arts - set(news), bars - set(got) - self.lost

    def wait(self, what: str, check: Callable[[], Any], timeout: float, interval: float = 1.0) -> float:
        """Seconds until ``check()`` is truthy; fails with the services' log tails on timeout."""
        t0 = time.monotonic()
        last: Any = None
        while time.monotonic() - t0 < timeout:
            try:
                if last := check():
                    return time.monotonic() - t0
            except Exception as exc:  # noqa: BLE001 - not there yet (service restarting)
                last = f"{type(exc).__name__}: {str(exc)[:200]}"
            time.sleep(interval)
        pytest.fail(f"timed out after {timeout:.0f}s waiting for {what} (last: {last})\n{self.logs()}")

    def caught_up(self) -> bool:
        arts, bars = self.missing()
        return not arts and not bars

    def record(self, fault: str, recovery_s: float, **extra: Any) -> dict[str, Any]:
        """Pause the replay, wait until everything served is loaded, then count: the table row."""
        self.pause()
        self.wait("every served record in the raw tables", self.caught_up, 180)
        arts, bars = self.emitted()
        news, got = self.loaded()
        raw_news, raw_bars = self.loaded(final=False)
        dup = sum(n - 1 for n in Counter(news).values() if n > 1) + sum(
            n - 1 for n in Counter(got).values() if n > 1
        )
        lag = self.cli("lag", "--once", "-g", "rtfin-loader", "--no-pipeline", timeout=120)
        row = {
            "fault": fault,
            "records_emitted": len(arts) + len(bars),
            "records_in_raw_final": len(set(news) & arts) + len(set(got) & bars),
            "duplicates_final": dup,
            "redelivered_copies": len(raw_news) + len(raw_bars) - len(news) - len(got),
            "lost_in_flight": len(self.lost & bars),
            "recovery_s": round(recovery_s, 1),
            "lag_once_exit": lag.returncode,
            **extra,
        }
        self.results.append(row)
        write_artifact(self.results)
        assert dup == 0, row
        assert row["records_in_raw_final"] + row["lost_in_flight"] == row["records_emitted"], row
        assert lag.returncode == 0, lag.stdout + lag.stderr
        return row


def write_artifact(rows: list[dict[str, Any]]) -> None:
    ARTIFACT.parent.mkdir(parents=True, exist_ok=True)
    doc = {"generated_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "speed": SPEED, "faults": rows}
    ARTIFACT.write_text(json.dumps(doc, indent=1) + "\n")


@pytest.fixture(scope="module")
def pipeline() -> Iterator[Pipeline]:
    # not pytest's numbered tmp dirs: parallel sessions prune those while this module still runs
    root = Path(tempfile.mkdtemp(prefix="rtfin-faults-"))
    data = root / ".rtfin"
    kafka = KafkaBroker(
        data_dir=data, cache_dir=CACHE, port=free_port(), controller_port=free_port(), heap="384m"
    )
    ch = ClickHouseServer(data_dir=data, port=free_port())
    market = MarketServer(data_dir=data, port=free_port(), speed=0.0, rate_limit=0)
    started: list[Any] = []
    env = {k: v for k, v in os.environ.items() if not k.startswith("RTFIN")}
    try:
        for svc in (kafka, ch, market):
            svc.start(timeout=180)
            started.append(svc)
        env.update(
            RTFIN__KAFKA__BOOTSTRAP=kafka.bootstrap,
            RTFIN__CLICKHOUSE__HOST="127.0.0.1",
            RTFIN__CLICKHOUSE__PORT=str(ch.port),
            RTFIN__CLICKHOUSE__SECURE="false",
            RTFIN__CLICKHOUSE__PASSWORD=ch.credentials()[1],
            RTFIN__CLICKHOUSE__LOADER_BATCH_S="1",
            RTFIN__POLYGON__REST_URL=market.url,
            RTFIN__POLYGON__WS_URL=market.ws_url,
            RTFIN__POLYGON__API_KEY="fault-test-key",
            RTFIN__LOCAL__DATA_DIR=str(data),
            RTFIN__LOCAL__CACHE_DIR=str(CACHE),
            PYTHONUNBUFFERED="1",
        )
        p = Pipeline(root, kafka, ch, market, env)
        for args in (("topics", "create"), ("transform", "ddl")):
            out = p.cli(*args)
            assert out.returncode == 0, out.stdout + out.stderr
        for name in COMMANDS:
            p.start(name)
        p.wait("the stocks producer to subscribe", lambda: market.control("status")["subscriptions"], 90)
        p.flow()
        p.wait("first bars and articles in ClickHouse", lambda: all(p.loaded()), 180)
        yield p
    finally:
        for name in reversed(COMMANDS):
            Service(name, data).stop(20)
        for svc in reversed(started):
            svc.stop()
        shutil.rmtree(root, ignore_errors=True)
