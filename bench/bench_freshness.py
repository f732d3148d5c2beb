"""Freshness of the whole local stack, and peak memory per service.

Brings up `rtfin local up` (free ports, temp dir), waits until the pipeline is warm, then for each replay
speed measures, for every bar and every scored article that appears after the speed was set:

    latency = wall time it is first visible in the reporting model − wall time of its event in the replay

(``rpt_intraday_price`` for bars, event = bar end; ``rpt_latest_news`` with a label for articles, event =
published time). The replay shifts and speeds up its clock, so an event time is mapped to the wall instant
the replay reached it, from the server's ``/_control/status`` (at speed 1 this is the event time up to the
replay's whole-minute shift). Same-run baseline: the same latency measured at the Kafka topic the stage
reads (``rtfin.stocks.aggs`` for bars, ``rtfin.news.sentiment`` for articles), so the ratio is what the
warehouse path (loader + models) adds. Peak memory is VmHWM summed over each supervised process group.

Highest sustained speed: after speeds 1 and 60, the replay speeds up step by step; a speed is sustained
when the bars' latency does not grow during its window (p50 of the last third ≤ 2 × p50 of the first
third + 5 s) and stays under 60 s. Reported as the speed and the records/s the stack took in at it (every
record on the news, stocks and sentiment topics during the window).

Environment: BENCH_FRESHNESS_PLAN (speed:window_s list, default "1:600,60:120,120:120,180:90,240:75";
at speed 1 an article is published every ~1.5 min at peak hours, hence the long window; speed × window
must fit one 390-minute market session), BENCH_FRESHNESS_DASHBOARD (1 = also run Superset for its memory
figure; default 1).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bench import Result

ROOT = Path(__file__).resolve().parents[1]
PORT_KEYS = ("KAFKA_PORT", "KAFKA_CONTROLLER_PORT", "CLICKHOUSE_PORT", "MARKET_PORT", "SUPERSET_PORT")
WARMUP_TIMEOUT_S = 1500.0
REPLAY_FROM = "2025-01-07T14:25:00Z"  # a day of news backlog: the pipeline is warm sooner


def pct(values: list[float], q: float) -> float:
    """The q-quantile (0..1) by linear interpolation; nan when empty."""
    if not values:
        return float("nan")
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[max(0, min(98, round(q * 100) - 1))]


class ReplayClock:
    """Maps replay (shown) event times to wall time, from the market server's control API."""

    def __init__(self, base: str) -> None:
        self.base = base

    def set_speed(self, speed: float) -> None:
        import httpx

        httpx.post(f"{self.base}/_control/clock", json={"speed": speed}, timeout=30).raise_for_status()
        t0 = time.time()
        doc = httpx.get(f"{self.base}/_control/status", timeout=30).json()
        self.wall0 = (t0 + time.time()) / 2
        self.shown0 = dt.datetime.fromisoformat(doc["now"].replace("Z", "+00:00")).timestamp()
        self.speed = float(doc["speed"])

    def ensure_session(self, needed_ms: float) -> None:
        """Jump the replay to a minute before the next session open unless ``needed_ms`` of market time
        are left in the current session (bars only flow during sessions)."""
        import httpx

        from rtfin_cli.local.market import dataset as ds

        doc = httpx.get(f"{self.base}/_control/status", timeout=30).json()
        now, shift = ds.parse_ms(doc["dataset_now"]), int(doc["shift_ms"])
        for open_ms in ds.trading_days():
            close_ms = open_ms + ds.SESSION_MINUTES * ds.MINUTE_MS
            if open_ms <= now and now + needed_ms <= close_ms:
                return
            if open_ms > now:
                goto = ds.iso(open_ms - ds.MINUTE_MS + shift)
                httpx.post(f"{self.base}/_control/clock", json={"goto": goto}, timeout=30).raise_for_status()
                print(f"replay clock moved to {goto} (next session open)", flush=True)
                return
        raise RuntimeError("the replay dataset has no session left to measure in")

    def wall_at(self, event_ms: float) -> float:
        return self.wall0 + (event_ms / 1000 - self.shown0) / self.speed

    def shown_now_ms(self) -> int:
        return int((self.shown0 + (time.time() - self.wall0) * self.speed) * 1000)


class KafkaArrivals(threading.Thread):
    """First arrival wall time of each bar (stocks topic) and scored article (sentiment topic)."""

    def __init__(self, kafka: Any) -> None:
        super().__init__(daemon=True)
        self.kafka, self.stop = kafka, threading.Event()
        self.bars: dict[tuple[str, int], tuple[float, int]] = {}  # (sym, s) -> (arrival, e)
        self.articles: dict[str, tuple[float, int]] = {}  # id -> (arrival, published ms)
        self.records = 0  # every record on the three data topics (throughput of the stack)

    def run(self) -> None:
        from confluent_kafka import Consumer

        conf = {
            **self.kafka.client_config(),
            "group.id": f"bench-freshness-{os.getpid()}",
            "auto.offset.reset": "latest",
            "enable.auto.commit": False,
        }
        consumer = Consumer(conf)
        topics = self.kafka.topics
        consumer.subscribe([topics.stocks_aggs, topics.news_sentiment, topics.news_raw])
        try:
            while not self.stop.is_set():
                for msg in consumer.consume(500, timeout=0.2):
                    now = time.time()
                    if msg.error():
                        continue
                    self.records += 1
                    if msg.topic() == topics.news_raw:
                        continue
                    try:
                        rec = json.loads(msg.value() or b"")
                        if msg.topic() == self.kafka.topics.stocks_aggs:
                            if rec.get("ev") == "AM":
                                self.bars.setdefault((rec["sym"], int(rec["s"])), (now, int(rec["e"])))
                        else:
                            pub = dt.datetime.fromisoformat(str(rec["published_utc"]).replace("Z", "+00:00"))
                            self.articles.setdefault(str(rec["id"]), (now, int(pub.timestamp() * 1000)))
                    except (ValueError, KeyError, TypeError):
                        continue
        finally:
            consumer.close()


@contextmanager
def local_stack(speed: float, dashboard: bool) -> Iterator[tuple[Path, dict[str, str]]]:
    """`rtfin local up` in a temp dir on free ports; always `rtfin local down --purge`."""
    from rtfin_cli.local.supervisor import free_port

    tmp = Path(tempfile.mkdtemp(prefix="rtfin-bench-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("RTFIN")}
    env.update({f"RTFIN__LOCAL__{k}": str(free_port()) for k in PORT_KEYS})
    env.update(
        RTFIN__LOCAL__DATA_DIR=str(tmp / ".rtfin"),
        RTFIN__LOCAL__CACHE_DIR=str(ROOT / ".cache"),
        RTFIN__SENTIMENT__CHECKPOINT_DIR=str(tmp / ".rtfin" / "checkpoints" / "sentiment"),
        RTFIN__SENTIMENT__MAX_OFFSETS_PER_TRIGGER="200",
    )
    cli = [sys.executable, "-m", "rtfin_cli", "local"]
    try:
        up = [
            *cli,
            "up",
            "--speed",
            f"{speed:g}",
            "--replay-from",
            REPLAY_FROM,
            *(["--with-dashboard"] if dashboard else []),
        ]
        out = subprocess.run(up, env=env, cwd=tmp, capture_output=True, text=True, timeout=WARMUP_TIMEOUT_S)
        print(out.stdout, out.stderr, flush=True)
        if out.returncode != 0:
            raise RuntimeError(f"rtfin local up failed: {out.stderr.strip()[-500:]}")
        from rtfin_cli.stack.supervise import Stack

        stack = Stack.load(tmp / ".rtfin")
        assert stack is not None
        yield tmp, {**env, **stack.env}
    finally:
        subprocess.run([*cli, "down", "--purge", "--timeout", "20"], env=env, cwd=tmp, timeout=600)
        shutil.rmtree(tmp, ignore_errors=True)


def group_memory_mb(pid: int) -> tuple[float, float]:
    """(sum of VmHWM, sum of VmRSS) in MB over the process group led by ``pid``."""
    hwm = rss = 0.0
    for entry in filter(str.isdigit, os.listdir("/proc")):
        try:
            if int(Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[2]) != pid:
                continue
            for line in Path(f"/proc/{entry}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    hwm += int(line.split()[1]) / 1024
                elif line.startswith("VmRSS:"):
                    rss += int(line.split()[1]) / 1024
        except (OSError, ValueError, IndexError):
            continue
    return hwm, rss


def measure(query: Any, clock: ReplayClock, arrivals: KafkaArrivals, window_s: float) -> dict[str, Any]:
    """Poll the reporting models for ``window_s``: latencies of bars/articles with events after the start."""
    start_ms = clock.shown_now_ms()
    seen_bars: dict[tuple[str, int], float] = {}
    seen_articles: dict[str, float] = {}
    bars_sql = (
        "SELECT ticker, toUnixTimestamp64Milli(bar_start), toUnixTimestamp64Milli(bar_end) "
        "FROM rtfin.rpt_intraday_price WHERE bar_end > fromUnixTimestamp64Milli({t:Int64})"
    )
    news_sql = (
        "SELECT DISTINCT article_id, toUnixTimestamp64Milli(published_at) FROM rtfin.rpt_latest_news "
        "WHERE label != '' AND published_at > fromUnixTimestamp64Milli({t:Int64})"
    )
    bar_end: dict[tuple[str, int], int] = {}
    published: dict[str, int] = {}
    deadline = time.time() + window_s
    while time.time() < deadline:
        for sym, s, e in query(bars_sql, {"t": start_ms}):
            if (sym, s) not in seen_bars:
                seen_bars[(sym, s)], bar_end[(sym, s)] = time.time(), e
        for aid, pub in query(news_sql, {"t": start_ms}):
            if aid not in seen_articles:
                seen_articles[aid], published[aid] = time.time(), pub
        time.sleep(0.5)
    bars = [seen_bars[k] - clock.wall_at(bar_end[k]) for k in seen_bars]
    arts = [seen_articles[k] - clock.wall_at(published[k]) for k in seen_articles]
    k_bars = [t - clock.wall_at(e) for t, e in list(arrivals.bars.values()) if e > start_ms]
    k_arts = [t - clock.wall_at(p) for t, p in list(arrivals.articles.values()) if p > start_ms]
    third = max(1, len(bars) // 3)
    ordered = [lat for _, lat in sorted(zip([seen_bars[k] for k in seen_bars], bars, strict=True))]
    return {
        "bars": bars,
        "articles": arts,
        "kafka_bars": k_bars,
        "kafka_articles": k_arts,
        "bars_first_third_p50": pct(ordered[:third], 0.5),
        "bars_last_third_p50": pct(ordered[-third:], 0.5),
    }


def run() -> list[Result]:
    from rtfin_cli.local.supervisor import supervised_pids
    from rtfin_cli.settings import load_settings
    from rtfin_cli.warehouse.client import get_client

    plan_text = os.environ.get("BENCH_FRESHNESS_PLAN", "1:600,60:120,120:120,180:90,240:75")
    plan = [(float(sp), float(w)) for sp, w in (item.split(":") for item in plan_text.split(","))]
    best: tuple[float, float] | None = None  # (speed, records/s) of the highest sustained speed
    dashboard = os.environ.get("BENCH_FRESHNESS_DASHBOARD", "1") == "1"
    results: list[Result] = []
    with local_stack(60.0, dashboard) as (tmp, env):
        os.environ.update(env)
        s = load_settings(environ=env).settings
        client = get_client(s.clickhouse)

        def query(sql: str, params: dict[str, Any]) -> list[tuple[Any, ...]]:
            try:
                return [tuple(r) for r in client.query(sql, parameters=params).result_rows]
            except Exception as exc:  # noqa: BLE001 - a busy moment; the next poll retries
                print(f"query failed: {exc}", flush=True)
                return []

        deadline = time.time() + WARMUP_TIMEOUT_S
        while time.time() < deadline:  # warm: bars and labelled news reach the reporting models
            ok = query(
                "SELECT (SELECT count() FROM rtfin.rpt_intraday_price) > 0 AND "
                "(SELECT count() FROM rtfin.rpt_latest_news WHERE label != '') > 0",
                {},
            )
            if ok and ok[0][0]:
                break
            time.sleep(5)
        else:
            raise RuntimeError("the pipeline never delivered bars and labelled news to the reporting models")
        arrivals = KafkaArrivals(s.kafka)
        arrivals.start()
        clock = ReplayClock(f"http://127.0.0.1:{s.local.market_port}")
        for speed, window in plan:
            clock.ensure_session(window * speed * 1000 + 120_000)
            clock.set_speed(speed)
            time.sleep(2)
            records0 = arrivals.records
            m = measure(query, clock, arrivals, window)
            rate = (arrivals.records - records0) / window
            last, first = m["bars_last_third_p50"], m["bars_first_third_p50"]
            sustained = bool(m["bars"]) and last <= 2 * first + 5 and pct(m["bars"], 0.95) < 60
            if sustained and (best is None or speed > best[0]):
                best = (speed, rate)
            for kind, kafka_kind, target in (
                ("bars", "kafka_bars", 5.0),
                ("articles", "kafka_articles", 15.0),
            ):
                vals, base = m[kind], m[kafka_kind]
                extra = {
                    "speed": speed,
                    "n": len(vals),
                    "kafka_n": len(base),
                    "window_s": window,
                    "sustained": sustained,
                    "records_per_s": rate,
                    "p50_s": pct(vals, 0.5),
                    "max_s": max(vals, default=float("nan")),
                    "first_third_p50_s": m["bars_first_third_p50"],
                    "last_third_p50_s": m["bars_last_third_p50"],
                }
                for q in (0.5, 0.95):
                    results.append(
                        Result(
                            f"freshness.{kind}.p{round(q * 100)}.speed{speed:g}",
                            pct(vals, q),
                            "s",
                            pct(base, q),
                            f"same {kind[:-1]} at its Kafka topic (p{round(q * 100)})",
                            f"p95 <= {target:g} s at speed 1" if q == 0.95 else "",
                            extra,
                        )
                    )
            print(
                json.dumps(
                    {k: v for k, v in m.items() if not isinstance(v, list)}
                    | {"speed": speed, "records_per_s": rate, "sustained": sustained}
                ),
                flush=True,
            )
            if not sustained and speed > 60:
                break  # the stack fell behind: higher speeds would only measure a growing backlog
        if best is not None:
            results.append(
                Result(
                    "freshness.highest_sustained_speed",
                    best[0],
                    "x",
                    extra={"records_per_s": best[1], "plan": plan_text},
                    target="report",
                )
            )
            results.append(Result("freshness.sustained_records_per_s", best[1], "rec/s", target="report"))
        arrivals.stop.set()
        client.close()
        total = 0.0
        for name, pid in supervised_pids(tmp / ".rtfin").items():
            hwm, rss = group_memory_mb(pid)
            total += hwm
            # #24's target; live processes at the end only (a Python worker Spark ended is not counted):
            # bench_sentiment's job_peak_mb.onnx measures the job's whole tree during a backlog
            goal = 700.0 if name == "sentiment" else None
            results.append(
                Result(f"memory.peak.{name}", hwm, "MB", extra={"rss_now_mb": rss}, goal=goal, at_most=True)
            )
        results.append(Result("memory.peak.total", total, "MB", target="whole stack within 24 GB"))
    return results


if __name__ == "__main__":
    for r in run():
        print(r.as_dict())
