"""A small real pipeline for fault injection: its own Kafka broker, ClickHouse endpoint and replay server
(free ports, temp dir; the tests kill and stop them, so they are not the session fixtures), and the news
producer, stocks producer, loader and (from its test on) the Spark sentiment job as supervised `rtfin`
processes (rtfin_cli.local.supervisor.Service).

Every check compares what the replay server served (``/_control/emitted``; for bars, every minute it
generated for the served tickers over that span, as the stocks producer repairs gaps from REST) with the
raw tables read with FINAL and with the marts dbt builds from them (dbt build --select +dim_ticker), and,
once the sentiment job runs, with ``rtfin.news.sentiment``; results accumulate into tests/artifacts/faults.json (the
table in docs/reliability.md, ``python -m tests.integration.faults.table``).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from rtfin_cli.local.clickhouse import ClickHouseServer
from rtfin_cli.local.kafka import KafkaBroker
from rtfin_cli.local.market import dataset as ds
from rtfin_cli.local.market.service import MarketServer
from rtfin_cli.local.supervisor import Service, free_port, pid_alive
from rtfin_cli.settings import KafkaSettings
from tests.conftest import CACHE, ROOT, run_cli

TICKERS = "AAPL,MSFT,NVDA,JPM,XOM"
SPEED = 90.0  # replay: 1.5 market minutes per wall second (5 tickers: 7.5 bars/s, ~1 article/s)
BACKFILL_H = 24  # news backlog at start: ~260 articles (the sentiment job scores them all on its first start)
ARTIFACT = ROOT / "tests" / "artifacts" / "faults.json"
MARTS = "+dim_ticker"  # the marts (fct_stock_bars, fct_news_sentiment, dim_ticker) and their staging views
COMMANDS = {
    "news": ("produce", "news", "--interval", "1s"),
    "stocks": ("produce", "stocks", "--tickers", TICKERS),
    "loader": ("transform", "load"),
    "sentiment": ("sentiment", "run"),  # started by its test, then runs for the rest of the module
}
SENTIMENT_GROUP = "rtfin-sentiment"
BUILD_MARTS = f"""
import json, sys
from rtfin_cli.settings import load_settings
from rtfin_cli.transform.dbt import invoke
out = invoke(load_settings().settings, "build", select=["{MARTS}"], extra=["--indirect-selection", "cautious"])
print(json.dumps(out.as_dict()))
sys.exit(0 if out.success else 1)
"""


@cache
def article_tickers() -> dict[str, frozenset[str]]:
    """article id -> the tickers it is served with (the replay dataset), as stg_news keeps them."""
    return {str(a["id"]): frozenset(t for t in a["tickers"] if t) for a in ds.news()}


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
    running: list[str] = field(default_factory=list)  # services that should be up (what a watchdog keeps)
    restarts: list[str] = field(default_factory=list)  # services restarted by restart_dead()
    _restarts_seen: int = 0

    @property
    def data_dir(self) -> Path:
        return self.root / ".rtfin"

    @property
    def scoring(self) -> bool:
        return "sentiment" in self.running

    def service(self, name: str) -> Service:
        return Service(name, self.data_dir)

    def start(self, name: str) -> int:
        cmd = [sys.executable, "-m", "rtfin_cli", *COMMANDS[name]]
        pid = self.service(name).start(cmd, env=self.env, cwd=self.root)
        if name not in self.running:
            self.running.append(name)
        return pid

    def sigkill(self, name: str) -> None:
        pid = self.service(name).pid()
        assert pid is not None, f"{name} is not running: {self.service(name).log_tail(5)}"
        os.killpg(pid, signal.SIGKILL)  # the whole group: Spark's JVM and Python workers too
        deadline = time.monotonic() + 10
        while pid_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not pid_alive(pid), f"{name} survived SIGKILL"
        self.service(name).pid()  # drops the stale pid file

    def restart_dead(self) -> list[str]:
        """What the local stack's watchdog does: start every stage that should run and does not."""
        dead = [n for n in self.running if self.service(n).pid() is None]
        for name in dead:
            self.start(name)
        self.restarts += dead
        return dead

    def cli(self, *args: str, timeout: float = 180) -> Any:
        return run_cli(*args, env=self.env, cwd=self.root, timeout=timeout)

    def logs(self) -> str:
        names = (*COMMANDS, "market", "kafka", "clickhouse")
        return "\n".join(f"---- {n} ----\n{self.service(n).log_tail(15)}" for n in names)

    # -- replay control ------------------------------------------------------------------------------
    def flow(self, speed: float = SPEED) -> None:
        """Run the replay; after the session's close (a session lasts ~4.3 min at SPEED) jump to 30 s before
        the next open, so that bars keep flowing for every test (the night's articles become visible)."""
        st = self.market.control("status")
        now = ds.parse_ms(st["dataset_now"])
        nxt = ds.next_session_minute(now)
        body: dict[str, Any] = {"speed": speed}
        if nxt is not None and nxt - now > 2 * ds.MINUTE_MS:
            body["goto"] = ds.iso(nxt - 30_000 + int(st["shift_ms"]))
        self.market.control("clock", body)

    def pause(self) -> None:
        self.market.control("clock", {"speed": 0})

    def served(self) -> dict[str, Any]:
        return self.market.control("emitted", timeout=30)  # type: ignore[no-any-return]

    def emitted(self) -> tuple[set[str], set[str]]:
        """(article ids the replay server has served so far, malformed ones excluded; bar keys 'AM|SYM|s' it
        generated for the served tickers from the first served minute to the newest)."""
        doc = self.served()
        shift = self.market.control("status")["shift_ms"]
        return set(doc["articles"]) - set(doc["malformed_articles"]), generated_bars(set(doc["bars"]), shift)

    # -- Kafka ---------------------------------------------------------------------------------------
    @property
    def kafka_settings(self) -> KafkaSettings:
        return KafkaSettings(bootstrap=self.kafka.bootstrap)

    def read_topic(self, topic: str, committed: bool = True, timeout: float = 60) -> list[Any]:
        """Every message of a topic (read_committed, or read_uncommitted to see aborted transactions)."""
        from confluent_kafka import KafkaError, TopicPartition

        from rtfin_cli.kafka.clients import consumer

        c = consumer(
            self.kafka_settings,
            group=f"faults-check-{uuid.uuid4().hex[:8]}",
            **{
                "enable.partition.eof": True,
                "isolation.level": "read_committed" if committed else "read_uncommitted",
            },
        )
        try:
            parts = sorted(c.list_topics(topic, timeout=30).topics[topic].partitions)
            c.assign([TopicPartition(topic, p, 0) for p in parts])
            todo, out = set(parts), []
            deadline = time.monotonic() + timeout
            while todo:
                assert time.monotonic() < deadline, f"reading {topic} timed out"
                for msg in c.consume(1000, timeout=0.5):
                    if msg.error():
                        if msg.error().code() == KafkaError._PARTITION_EOF:
                            todo.discard(msg.partition())
                        continue
                    out.append(msg)
            return out
        finally:
            c.close()

    def group_lag(self, group: str, topic: str) -> tuple[int, int]:
        """(committed offsets summed, messages not yet committed) of a group on a topic."""
        from confluent_kafka import TopicPartition

        from rtfin_cli.kafka.clients import consumer

        c = consumer(self.kafka_settings, group=group)
        try:
            parts = sorted(c.list_topics(topic, timeout=30).topics[topic].partitions)
            committed = {
                tp.partition: tp.offset for tp in c.committed([TopicPartition(topic, p) for p in parts], 30)
            }
            done = lag = 0
            for p in parts:
                _, high = c.get_watermark_offsets(TopicPartition(topic, p), timeout=30)
                done += max(committed[p], 0)
                lag += high - max(committed[p], 0)
            return done, lag
        finally:
            c.close()

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

    def scored(self) -> list[str]:
        """Article ids in rtfin_raw.news_sentiment FINAL."""
        return self.rows("SELECT id FROM rtfin_raw.news_sentiment FINAL FORMAT TabSeparated")

    def missing(self) -> tuple[set[str], set[str]]:
        arts, bars = self.emitted()
        news, got = self.loaded()
        missing_arts = arts - set(news)
        if self.scoring:
            missing_arts |= arts - set(self.scored())
        return missing_arts, bars - set(got) - self.lost

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

    def recover(self, what: str, timeout: float = 300) -> float:
        """Seconds until everything served so far (snapshot now) is loaded (and scored, with the job up)."""
        arts, bars = self.emitted()
        t0 = time.monotonic()

        def done() -> bool:
            self.restart_dead()
            news, got = self.loaded()
            if not (arts <= set(news) and bars - self.lost <= set(got)):
                return False
            return not self.scoring or arts <= set(self.scored())

        self.wait(what, done, timeout)
        return time.monotonic() - t0

    # -- marts ---------------------------------------------------------------------------------------
    def build_marts(self) -> float:
        """dbt build (models + tests) of the marts and what they depend on, through rtfin's dbt invocation in
        its own process (bounded). Indirect selection is "cautious": a test runs only when all its parents are
        selected, so the replay test that also reads the reporting views (not built here) is left out;
        the duplicate checks of this module cover the marts."""
        t0 = time.monotonic()
        out = subprocess.run(
            [sys.executable, "-c", BUILD_MARTS],
            capture_output=True, text=True, env=self.env, cwd=self.root, timeout=420,
        )  # fmt: skip
        assert out.returncode == 0, (
            f"dbt build of the marts failed:\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}"
        )
        doc = json.loads(out.stdout.strip().splitlines()[-1])
        built = {n["name"] for n in doc["nodes"] if n["kind"] == "model" and n["status"] == "success"}
        assert {"fct_stock_bars", "fct_news_sentiment", "dim_ticker"} <= built, doc["counts"]
        return time.monotonic() - t0

    def marts(self) -> tuple[list[str], list[tuple[str, str, bool]]]:
        """(bar keys in fct_stock_bars FINAL, (article_id, ticker, scored) rows of fct_news_sentiment)."""
        bars = self.rows(
            "SELECT concat(ev, '|', sym, '|', toString(toUnixTimestamp64Milli(bar_start)))"
            " FROM rtfin.fct_stock_bars FINAL FORMAT TabSeparated"
        )
        news = [
            (a, t, s == "1")
            for a, t, s in (
                line.split("\t")
                for line in self.rows(
                    "SELECT article_id, ticker, label IS NOT NULL FROM rtfin.fct_news_sentiment FORMAT TabSeparated"
                )
            )
        ]
        return bars, news

    def lag_ok(self) -> dict[str, Any]:
        """`rtfin lag --once --max-lag 0` for the loader (and sentiment) groups, retried until it exits 0
        (the loader commits its offsets just after the insert that made the rows visible)."""
        groups = ["-g", "rtfin-loader"] + (["-g", SENTIMENT_GROUP] if self.scoring else [])
        last: dict[str, Any] = {}

        def check() -> bool:
            out = self.cli("lag", "--once", "--json", "--no-pipeline", "--max-lag", "0", *groups, timeout=120)
            doc = json.loads(out.stdout.strip().splitlines()[-1]) if out.stdout.strip() else {}
            states = {f"{g['group']}/{g['topic']}": g["state"] for g in doc.get("groups", [])}
            last.update(exit=out.returncode, states=states, stderr=out.stderr.strip()[-300:])
            return out.returncode == 0 and all(
                s == "OK" for k, s in states.items() if k.startswith("rtfin-loader/")
            )

        t0 = time.monotonic()
        deadline = t0 + 60
        while not check() and time.monotonic() < deadline:
            time.sleep(2)
        last["wait_s"] = round(time.monotonic() - t0, 1)
        return last

    def record(self, fault: str, recovery_s: float, **extra: Any) -> dict[str, Any]:
        """Pause the replay, wait until everything served is loaded, build the marts, then count: the row."""
        self.pause()
        self.wait("every served record in the raw tables", self.caught_up, 180)
        build_s = self.build_marts()
        doc = self.served()
        arts, bars = self.emitted()
        news, got = self.loaded()
        raw_news, raw_bars = self.loaded(final=False)
        mart_bars, mart_news = self.marts()
        tickers = article_tickers()
        want_pairs = {(a, t) for a in arts for t in tickers[a]}
        pairs = Counter((a, t) for a, t, _ in mart_news)
        mart_ids = {a for a, _ in pairs}
        no_ticker = {a for a in arts if not tickers[a]}  # never in fct_news_sentiment (article x ticker)
        bar_copies = Counter(mart_bars)
        expected_bars = bars - self.lost
        dup_raw = sum(n - 1 for n in Counter(news).values() if n > 1) + sum(
            n - 1 for n in Counter(got).values() if n > 1
        )
        dup_marts = sum(n - 1 for n in bar_copies.values() if n > 1) + sum(
            n - 1 for n in pairs.values() if n > 1
        )
        # a malformed article served again intact later is fine in the marts; anything else unexpected is not
        unexpected = (mart_ids - arts - set(doc["malformed_articles"])) | (set(bar_copies) - bars)
        row: dict[str, Any] = {
            "fault": fault,
            "records_emitted": len(arts) + len(bars),
            "articles_emitted": len(arts),
            "bars_emitted": len(bars),
            "articles_without_tickers": len(no_ticker),
            "records_expected_in_marts": len(arts - no_ticker) + len(expected_bars),
            "records_in_marts": len(mart_ids & arts) + len(set(bar_copies) & bars),
            "article_ticker_rows_expected": len(want_pairs),
            "article_ticker_rows_in_marts": len(set(pairs) & want_pairs),
            "duplicates_marts": dup_marts,
            "unexpected_in_marts": len(unexpected),
            "records_in_raw_final": len(set(news) & arts) + len(set(got) & bars),
            "duplicates_raw_final": dup_raw,
            "redelivered_copies": len(raw_news) + len(raw_bars) - len(news) - len(got),
            "lost_in_flight": len(self.lost & bars),
            "recovery_s": round(recovery_s, 1),
            "marts_build_s": round(build_s, 1),
            "restarted_by_watchdog": sorted(set(self.restarts[self._restarts_seen :])),
            **extra,
        }
        self._restarts_seen = len(self.restarts)
        if self.scoring:
            row.update(self.sentiment_counts(arts, mart_news))
        lag = self.lag_ok()
        row.update(lag_once_exit=lag["exit"], lag_states=lag["states"], lag_wait_s=lag["wait_s"])
        verified = self.cli("verify", "--json")  # the same proof from Kafka's offsets, as a user runs it
        row["verify_exit"] = verified.returncode
        self.results.append(row)
        write_artifact(self.results)
        assert row["duplicates_marts"] == 0 and dup_raw == 0, row
        assert not unexpected, sorted(unexpected)[:10]
        assert (mart_ids & arts) == arts - no_ticker, sorted(arts - no_ticker - mart_ids)[:10]
        assert set(pairs) >= want_pairs, sorted(want_pairs - set(pairs))[:10]
        assert set(bar_copies) >= expected_bars, sorted(expected_bars - set(bar_copies))[:10]
        assert row["records_in_marts"] == row["records_expected_in_marts"], row
        assert row["records_in_raw_final"] + row["lost_in_flight"] == row["records_emitted"], row
        if self.scoring:
            assert row["sentiment_copies_max"] == 1 and row["articles_scored"] == len(arts), row
            assert row["marts_rows_unscored"] == 0, row
        assert lag["exit"] == 0, lag
        assert verified.returncode == 0, verified.stdout[-3000:] + verified.stderr[-2000:]
        return row

    def sentiment_counts(self, arts: set[str], mart_news: list[tuple[str, str, bool]]) -> dict[str, Any]:
        """Results per article in rtfin.news.sentiment (committed reads), raw FINAL and the marts."""
        copies = Counter(m.key().decode() for m in self.read_topic("rtfin.news.sentiment"))
        served = {a: copies.get(a, 0) for a in arts}
        return {
            "articles_scored": sum(1 for n in served.values() if n),
            "sentiment_copies_max": max(served.values(), default=0),
            "sentiment_unexpected": len(set(copies) - arts),
            "scored_in_raw_final": len(set(self.scored()) & arts),
            "marts_rows_unscored": sum(1 for a, _, s in mart_news if a in arts and not s),
        }


def generated_bars(served: set[str], shift_ms: int) -> set[str]:
    """Every minute bar the replay generated for the served tickers between the first and the newest served
    minute: what the stocks producer must deliver, streamed or repaired from REST after a gap."""
    from rtfin_cli.local.market import dataset as ds

    keys = [k.split("|") for k in served]
    if not keys:
        return set()
    syms = {sym for ev, sym, _ in keys if ev == "AM"}
    lo, hi = min(int(s) for *_, s in keys) - shift_ms, max(int(s) for *_, s in keys) - shift_ms
    out = set(served)
    for open_ms in ds.trading_days():
        for i in range(ds.SESSION_MINUTES):
            s = open_ms + i * ds.MINUTE_MS
            if lo <= s <= hi:
                out.update(f"AM|{sym}|{s + shift_ms}" for sym in syms)
    return out


def write_artifact(rows: list[dict[str, Any]]) -> None:
    ARTIFACT.parent.mkdir(parents=True, exist_ok=True)
    doc = {
        "generated_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "speed": SPEED,
        "load_average": [round(x, 1) for x in os.getloadavg()],
        "faults": rows,
    }
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
            RTFIN__POLYGON__NEWS_BACKFILL_H=str(BACKFILL_H),
            RTFIN__LOCAL__DATA_DIR=str(data),
            RTFIN__LOCAL__CACHE_DIR=str(CACHE),
            # the Spark job, kept small on a shared 2-core machine: one core, one shuffle partition,
            # 100 articles per micro-batch, one torch thread
            RTFIN__SENTIMENT__SPARK_MASTER="local[1]",
            RTFIN__SENTIMENT__SHUFFLE_PARTITIONS="1",
            RTFIN__SENTIMENT__DRIVER_MEMORY="512m",
            RTFIN__SENTIMENT__MAX_OFFSETS_PER_TRIGGER="100",
            RTFIN__SENTIMENT__BATCH_SIZE="32",
            RTFIN__SENTIMENT__TRIGGER_INTERVAL="3 seconds",
            RTFIN__SENTIMENT__CHECKPOINT_DIR=str(data / "checkpoints" / "sentiment"),
            RTFIN_TORCH_THREADS="1",
            SPARK_LOCAL_IP="127.0.0.1",
            RTFIN_SENTIMENT_TXN_DEADLINE_S="45",  # a batch's transaction stuck this long ends the job (restarted)  # else Spark binds the driver to the host's external address
            HF_HUB_OFFLINE="1",
            PYTHONUNBUFFERED="1",
        )
        p = Pipeline(root, kafka, ch, market, env)
        for args in (("topics", "create"), ("transform", "ddl")):
            out = p.cli(*args)
            assert out.returncode == 0, out.stdout + out.stderr
        for name in ("news", "stocks", "loader"):
            p.start(name)
        p.wait("the stocks producer to subscribe", lambda: market.control("status")["subscriptions"], 90)
        p.flow()
        p.wait("first bars and articles in ClickHouse", lambda: all(p.loaded()), 180)
        yield p
    finally:
        for name in reversed(COMMANDS):
            Service(name, data).stop(30)
        for svc in reversed(started):
            svc.stop()
        logs = (
            ARTIFACT.parent / "faults-logs"
        )  # the services' logs of the last run, for a failure's post-mortem
        shutil.rmtree(logs, ignore_errors=True)
        if (data / "logs").is_dir():
            shutil.copytree(data / "logs", logs, dirs_exist_ok=True)
        shutil.rmtree(root, ignore_errors=True)
