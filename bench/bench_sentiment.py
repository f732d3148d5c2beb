"""Sentiment throughput: the batched scoring path vs. calling the model once per row (the seed's approach).

Figures, each against a baseline measured in the same run:
  sentiment.model_batched_hps   headlines/s of scorer.predict(batch)    vs one predict([row]) per headline
  sentiment.spark_udf_hps       headlines/s of the job's pandas UDF in Spark local[*]
                                vs a row-at-a-time Python UDF calling the model per row (the seed)
  sentiment.e2e_hps[.onnx]      headlines/s through Kafka -> jobs/sentiment_stream.py (--once) -> Kafka
                                after start-up, vs the same model batched in-process; paired rule: each
                                side in a fresh process, ROUNDS alternating rounds, median (goal 0.8).
                                A backlog, where throughput matters: two micro-batches of the job's default
                                max_offsets_per_trigger (E2E_BATCH rows each; a live stream's small batches
                                are a matter of latency, which bench_freshness measures)
  sentiment.job_peak_mb[.onnx]  peak memory of the job's process tree in those rounds (median; goal
                                <= 700 MB for the runtime the local stack runs)
Model: the offline default rtfin-minilm-fin (no hub access needed). Run: python -m bench bench_sentiment
(BENCH_SENTIMENT_RUNTIMES=onnx for one runtime only).
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from bench import Result
from bench.bench_freshness import group_members
from bench.paired import alternate

ROOT = Path(__file__).resolve().parents[1]
MODEL = "rtfin-minilm-fin"
N_BATCHED = int(os.environ.get("BENCH_SENTIMENT_N", "1200"))
N_ROW = int(os.environ.get("BENCH_SENTIMENT_N_ROW", "240"))
# rows per micro-batch: the job's default max_offsets_per_trigger (sentiment settings)
E2E_BATCH = int(os.environ.get("BENCH_SENTIMENT_E2E_BATCH", "5000"))
E2E_N = int(os.environ.get("BENCH_SENTIMENT_E2E_N", str(2 * E2E_BATCH)))
ROUNDS = int(os.environ.get("BENCH_SENTIMENT_ROUNDS", "3"))
RUNTIMES = os.environ.get("BENCH_SENTIMENT_RUNTIMES", "torch,onnx").split(",")
STACK_RUNTIME = "onnx"  # what `rtfin local up` runs (stack.plan): the memory target applies to it


def _headlines(n: int) -> list[str]:
    from rtfin_cli.sentiment import DATA_DIR
    from rtfin_cli.sentiment.labelled import read_tsv

    titles = read_tsv(DATA_DIR / "headlines_train.tsv")[1] + read_tsv(DATA_DIR / "headlines_heldout.tsv")[1]
    return [titles[i % len(titles)] + ("" if i < len(titles) else f" ({i})") for i in range(n)]


def _model_level() -> tuple[Result, float]:
    from rtfin_cli.sentiment.scoring import get_scorer

    scorer = get_scorer(MODEL, 256, 64)
    scorer.predict(_headlines(64))  # warm up
    batched, single = _headlines(N_BATCHED), _headlines(N_ROW)
    t0 = time.perf_counter()
    scorer.predict(batched)
    hps_batched = N_BATCHED / (time.perf_counter() - t0)
    t0 = time.perf_counter()
    for text in single:
        scorer.predict([text])
    hps_row = N_ROW / (time.perf_counter() - t0)
    extra = {"n_batched": N_BATCHED, "n_row": N_ROW}
    result = Result(
        "sentiment.model_batched_hps", hps_batched, "headlines/s", hps_row, "model called once per row",
        "ratio >= 10", extra,
    )  # fmt: skip
    return result, hps_batched


def _spark_level(job) -> Result:  # type: ignore[no-untyped-def]
    from pyspark.sql import SparkSession
    from pyspark.sql import functions as F

    from rtfin_cli.locate import SPARK_VERSION, jar_files

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    jars = ",".join(map(str, jar_files(ROOT / ".cache", f"spark-kafka-{SPARK_VERSION}")))  # for e2e: same JVM
    spark = (
        SparkSession.builder.master("local[*]").appName("bench-sentiment").config("spark.jars", jars)
        .config("spark.driver.memory", "1g").config("spark.sql.shuffle.partitions", "2")
        .config("spark.ui.enabled", "false").getOrCreate()
    )  # fmt: skip
    spark.sparkContext.setLogLevel("ERROR")
    module = "rtfin_cli.sentiment.scoring"
    batched = job.make_score_udf(module, MODEL, 256, 64)

    @F.udf("struct<label: string, score: double, sentiment: double>")
    def per_row(text: str):  # type: ignore[no-untyped-def]  # the seed: one model call per row
        from rtfin_cli.sentiment.scoring import get_scorer

        p = get_scorer(MODEL, 256, 64).predict([text or ""])[0]
        return (p.label, p.score, p.sentiment)

    def rate(udf, n: int) -> float:  # type: ignore[no-untyped-def]
        df = spark.createDataFrame([(t,) for t in _headlines(n)], "title string").repartition(2)
        df.select(udf(F.col("title")).alias("r")).select("r.label").collect()  # warm: load per worker
        t0 = time.perf_counter()
        df.select(udf(F.col("title")).alias("r")).select("r.label").collect()
        return n / (time.perf_counter() - t0)

    try:
        hps_row = rate(per_row, N_ROW)
        hps_batched = rate(batched, N_BATCHED)
    finally:
        spark.stop()
    return Result("sentiment.spark_udf_hps", hps_batched, "headlines/s", hps_row,
                  "Spark row UDF, model per row (seed)", "ratio >= 10", {"master": "local[*]"})  # fmt: skip


class TreePeak(threading.Thread):
    """Peak memory of this process and its descendants, sampled every 0.5 s: the highest sum of the live
    processes' RSS (``rss_mb``) and of their PSS (``pss_mb``: pages shared between processes, such as those a
    forked Python worker shares with Spark's daemon, counted once; read every 5th sample, as smaps_rollup of
    a JVM is costly to read: at 0.2 s for both, the sampling took a third of a core from the job it
    measures), and the sum of every process's own peak (``hwm_mb``, VmHWM, bench_freshness's rule)."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.hwm: dict[int, float] = {}
        self.rss_mb = self.pss_mb = 0.0
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.wait(0.5):
            self.sample()

    def sample(self) -> None:
        rss = pss = 0.0
        self.samples = getattr(self, "samples", 0) + 1
        for pid in (int(entry) for entry, _ in group_members(os.getpid())):  # this process and its tree
            fields = _kb_fields(f"/proc/{pid}/status", ("VmHWM:", "VmRSS:"))
            if fields:
                self.hwm[pid] = max(self.hwm.get(pid, 0.0), fields.get("VmHWM:", 0) / 1024)
                rss += fields.get("VmRSS:", 0) / 1024
                if self.samples % 5 == 1:
                    pss += _kb_fields(f"/proc/{pid}/smaps_rollup", ("Pss:",)).get("Pss:", 0) / 1024
        self.rss_mb, self.pss_mb = max(self.rss_mb, rss), max(self.pss_mb, pss)

    def stop(self) -> dict[str, float]:
        self.sample()
        self.done.set()
        return {"rss_mb": self.rss_mb, "pss_mb": self.pss_mb, "hwm_mb": sum(self.hwm.values())}


def _kb_fields(path: str, names: tuple[str, ...]) -> dict[str, int]:
    """The kB values of the named lines of a /proc file (empty when the process is gone)."""
    try:
        lines = Path(path).read_text().splitlines()
    except OSError:
        return {}
    return {ln.split()[0]: int(ln.split()[1]) for ln in lines if ln.startswith(names)}


def model_side(n: int, runtime: str, **_job_only: object) -> dict[str, float]:
    """Fresh process: headlines/s of the warm model batched in-process (the e2e baseline; the pair shares
    one set of arguments, the job's own are ignored here)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from rtfin_cli.sentiment.scoring import get_scorer

    scorer = get_scorer(MODEL, 256, 64, runtime)
    scorer.predict(_headlines(64))  # warm up
    texts = _headlines(n)
    t0 = time.perf_counter()
    scorer.predict(texts)
    return {"hps": n / (time.perf_counter() - t0)}


def job_side(bootstrap: str, n: int, runtime: str, max_offsets: int, stack: bool) -> dict[str, Any]:
    """Fresh process: ``n`` articles into new topics, then what ``rtfin sentiment run --once`` runs, here.

    ``stack``: with the settings `rtfin local up` gives the job (stack.plan.lean_sentiment_env), else
    `rtfin sentiment run`'s defaults. hps: rows/s from the first batch's start to the last one's end (after start-up: Spark session and the
    model loaded in every worker); startup_s: until the query runs; rss_mb, pss_mb, hwm_mb: TreePeak's.
    """
    from rtfin_cli.kafka.admin import create_topics
    from rtfin_cli.kafka.clients import producer
    from rtfin_cli.sentiment.runner import run_local
    from rtfin_cli.settings import load_settings
    from rtfin_cli.stack.plan import lean_sentiment_env

    prefix = f"b{uuid.uuid4().hex[:8]}"
    with tempfile.TemporaryDirectory(prefix="bench-sentiment-") as tmp:
        env = {k: v for k, v in os.environ.items() if not k.startswith("RTFIN__")} | {
            "RTFIN__KAFKA__BOOTSTRAP": bootstrap, "RTFIN__KAFKA__TOPICS__NEWS_RAW": f"{prefix}.news.raw",
            "RTFIN__KAFKA__TOPICS__NEWS_SENTIMENT": f"{prefix}.news.sentiment",
            "RTFIN__KAFKA__TOPICS__DLQ": f"{prefix}.dlq", "RTFIN__KAFKA__TOPICS__STOCKS_AGGS": f"{prefix}.aggs",
            "RTFIN__SENTIMENT__GROUP": f"{prefix}-sentiment", "RTFIN__SENTIMENT__RUNTIME": runtime,
            "RTFIN__SENTIMENT__MAX_OFFSETS_PER_TRIGGER": str(max_offsets),
            "RTFIN__SENTIMENT__CHECKPOINT_DIR": str(Path(tmp) / "ckpt"),
            "RTFIN__LOCAL__CACHE_DIR": str(ROOT / ".cache"), "RTFIN__LOCAL__DATA_DIR": str(Path(tmp) / "data"),
        }  # fmt: skip
        if stack:
            env |= lean_sentiment_env(load_settings(environ=env).settings)
        s = load_settings(environ=env).settings
        create_topics(s.kafka)
        p = producer(s.kafka)
        published = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        for i, title in enumerate(_headlines(n)):
            doc = {"id": f"b{i}", "title": title, "published_utc": published, "tickers": ["X"]}
            p.produce(s.kafka.topics.news_raw, key=f"b{i}", value=json.dumps(doc))
        p.flush(60)
        peak = TreePeak()
        peak.start()
        t0 = time.time()
        final = run_local(s, once=True)
        wall, memory = time.time() - t0, peak.stop()
    assert final["scored"] == n, final
    busy = final["last_batch_at"] - final["first_batch_at"]
    return {"hps": n / busy, "startup_s": final["startup_s"], "wall_s": wall, **memory,
            "batches": final["batches"], "spark_ms": final["spark_ms"]}  # fmt: skip


def _end_to_end(runtime: str, bootstrap: str) -> list[Result]:
    """Job vs in-process model, paired rounds in fresh processes; and the job's peak memory. The runtime
    the local stack runs is measured with the stack's settings for the job, the other with the defaults."""
    stack = runtime == STACK_RUNTIME
    kw = {"n": E2E_N, "runtime": runtime, "stack": stack}
    load = os.getloadavg()[0]
    hps, base, rounds = alternate(
        "bench.bench_sentiment:job_side", "bench.bench_sentiment:model_side", "hps",
        rounds=ROUNDS, **kw, bootstrap=bootstrap, max_offsets=E2E_BATCH,
    )  # fmt: skip
    jobs = [r for r in rounds if r["side"] == "value"]
    extra = {
        "n": E2E_N, "batch_rows": E2E_BATCH, "runtime": runtime, "settings": "rtfin local up" if stack else "defaults", "rounds": rounds, "loadavg_1m_at_start": load,
        "startup_s": statistics.median(r["startup_s"] for r in jobs),
        "wall_s": statistics.median(r["wall_s"] for r in jobs),
    }  # fmt: skip
    suffix = "" if runtime == "torch" else f".{runtime}"
    peak = statistics.median(r["rss_mb"] for r in jobs)
    return [
        Result(f"sentiment.e2e_hps{suffix}", hps, "headlines/s", base, f"in-process batched model ({runtime})",
               "ratio >= 0.8 (after start-up)", extra, goal=0.8),
        Result(f"sentiment.job_peak_mb{suffix}", peak, "MB", target="<= 700 MB" if stack else "report",
               extra={"runtime": runtime, "what": "highest sum of the live processes' RSS",
                      "rounds": [{k: r[k] for k in ("rss_mb", "pss_mb", "hwm_mb")} for r in jobs]},
               goal=700.0 if stack else None, at_most=True),
    ]  # fmt: skip


def run() -> list[Result]:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from rtfin_cli.local.kafka import KafkaBroker
    from rtfin_cli.local.supervisor import free_port
    from rtfin_cli.sentiment.runner import load_job

    job = load_job()
    model, _ = _model_level()
    results = [model, _spark_level(job)]
    with tempfile.TemporaryDirectory(prefix="bench-sentiment-kafka-") as tmp:
        broker = KafkaBroker(
            data_dir=Path(tmp), cache_dir=ROOT / ".cache", port=free_port(), controller_port=free_port()
        )
        broker.start(timeout=180)
        try:
            for runtime in RUNTIMES:
                results += _end_to_end(runtime, broker.bootstrap)
        finally:
            broker.stop()
    return results
