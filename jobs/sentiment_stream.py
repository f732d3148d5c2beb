"""rtfin sentiment job: Kafka rtfin.news.raw -> batched sentiment model -> rtfin.news.sentiment (+ rtfin.dlq).

Runs unchanged as a Databricks ``spark_python_task`` and locally (``rtfin sentiment run`` imports it and
calls :func:`run`). Options come from flags or a JSON file (``--config``), with the same names in both.
The streaming query parses the JSON with an explicit schema, marks non-JSON and rows without id or title
for the DLQ and scores title (+ description) in a pandas UDF (the model loaded once per Python worker, at
start-up; the rows dealt evenly to the workers, each with its share of the cores). Each micro-batch collects
that, drops rows below the group's committed offsets (already written), and writes results, dead letters
and the batch's end offsets for the consumer group in ONE Kafka transaction: a crash neither loses nor
duplicates an article, and `rtfin lag` sees the group's progress. The Kafka side (client settings, resume
offsets, the transactional writer) is sentiment_kafka.py beside this file.
"""

import argparse
import contextlib
import importlib
import importlib.util
import json
import os
import signal
import sys
import threading
import time
import zipimport
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime
from types import ModuleType
from typing import Any

import pandas as pd

NEWS_SCHEMA = (
    "id STRING, published_utc STRING, title STRING, description STRING, article_url STRING, author STRING, "
    "publisher STRUCT<name: STRING, homepage_url: STRING, logo_url: STRING, favicon_url: STRING>, "
    "tickers ARRAY<STRING>, keywords ARRAY<STRING>, image_url STRING, amp_url STRING, ingested_at STRING"
)
RESULT_SCHEMA = "label STRING, score DOUBLE, sentiment DOUBLE, model STRING, scored_at STRING"


@dataclass
class Options:
    """Every option of the job (flag ``--max-offsets-per-trigger`` = JSON key ``max_offsets_per_trigger``)."""

    profile: str = "local"
    bootstrap: str = "127.0.0.1:9092"
    topic_in: str = "rtfin.news.raw"
    topic_out: str = "rtfin.news.sentiment"
    topic_dlq: str = "rtfin.dlq"
    group: str = "rtfin-sentiment"
    model: str = "ProsusAI/finbert"
    runtime: str = "torch"  # onnx: the offline model as ONNX int8 under ONNX Runtime
    batch_size: int = 64
    max_length: int = 256
    checkpoint: str = ".rtfin/checkpoints/sentiment"
    trigger_interval: str = "5 seconds"
    once: bool = False  # availableNow: process what is there, then stop
    starting_offsets: str = "earliest"
    max_offsets_per_trigger: int = 5000
    fail_on_data_loss: bool = True
    security_protocol: str = "PLAINTEXT"
    sasl_mechanism: str = "PLAIN"
    sasl_username: str = ""
    sasl_password: str = field(default="", repr=False)  # never from argv/JSON: env or secret scope
    secret_scope: str = ""
    scoring_module: str = ""  # path of rtfin_scoring.py when rtfin is not installed (Databricks)
    kafka_module: str = ""  # path of sentiment_kafka.py (default: beside this file)
    shaded_kafka: bool = False  # Databricks: the Kafka client's classes are relocated under kafkashaded.
    master: str = ""  # empty: the cluster's (Databricks); local[*] for `rtfin sentiment run`
    jars: str = ""  # comma-separated jar paths (the Kafka connector in local mode)
    driver_memory: str = ""
    java_options: str = ""  # local: JVM options of the driver (spark.driver.extraJavaOptions)
    shuffle_partitions: int = 2
    workers: int = 0  # Python workers scoring a batch side by side (0: one per core), sharing the cores


_NOT_ARGS = {"sasl_password"}


def _bool(text: str) -> bool:
    low = str(text).lower()
    if low not in ("1", "true", "yes", "on", "0", "false", "no", "off"):
        raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")
    return low in ("1", "true", "yes", "on")


def parse_args(argv: list[str]) -> Options:
    """Options from ``--config FILE.json`` overridden by command-line flags."""
    parser = argparse.ArgumentParser(prog="sentiment_stream.py", description="rtfin sentiment streaming job")
    parser.add_argument("--config", help="JSON file with any of the options below (snake_case keys)")
    for f in fields(Options):
        if f.name in _NOT_ARGS:
            continue
        kind = _bool if f.type in (bool, "bool") else int if f.type in (int, "int") else str
        parser.add_argument("--" + f.name.replace("_", "-"), dest=f.name, type=kind, default=None)
    ns = vars(parser.parse_args(argv))
    values: dict[str, Any] = {}
    config = ns.pop("config")
    if config:
        with open(config, encoding="utf-8") as fh:
            values = json.load(fh)
        unknown = set(values) - {f.name for f in fields(Options)} - _NOT_ARGS
        if unknown:
            parser.error(f"{config}: unknown keys {sorted(unknown)}")
    values.update({k: v for k, v in ns.items() if v is not None})
    return Options(**values)


@dataclass
class Progress:
    """What the job has done so far (the local runner reports it; main() prints it as JSON)."""

    batches: int = 0
    rows: int = 0
    scored: int = 0
    dlq: int = 0
    skipped: int = 0  # rows replayed after a crash that were already committed
    last_batch_rows: int = 0
    last_batch_s: float = 0.0
    offsets: dict[int, int] = field(default_factory=dict)  # partition -> next offset committed
    started_at: float = field(default_factory=time.time)
    startup_s: float = 0.0  # Spark session up, the model loaded in every Python worker, query started
    first_batch_at: float = 0.0  # epoch s: the first batch's start and the last one's end, which give the
    last_batch_at: float = 0.0  # rate of a backlog after start-up, Spark's work between batches included
    spark_ms: dict[str, int] = field(default_factory=dict)  # Spark's durationMs summed over recent batches
    in_batch: bool = False

    @property
    def rows_per_s(self) -> float:
        return self.last_batch_rows / self.last_batch_s if self.last_batch_s else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "rows_per_s": self.rows_per_s}

    def add(self, scored: int, failed: int, offsets: dict[int, int], seconds: float) -> None:
        """Count one committed batch."""
        self.last_batch_at = time.time()
        self.first_batch_at = self.first_batch_at or self.last_batch_at - seconds
        self.batches, self.rows = self.batches + 1, self.rows + scored + failed
        self.scored, self.dlq = self.scored + scored, self.dlq + failed
        self.offsets.update(offsets)
        self.last_batch_rows, self.last_batch_s = scored + failed, seconds


def kafka_module(opts: Options) -> ModuleType:
    """sentiment_kafka.py, the job's Kafka side, shipped beside this file (uploaded with it to Databricks)."""
    name = "rtfin_sentiment_kafka"
    if name not in sys.modules:
        beside = os.path.join(os.path.dirname(os.path.abspath(__file__)), "sentiment_kafka.py")
        spec = importlib.util.spec_from_file_location(name, opts.kafka_module or beside)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


def scoring_module_name(opts: Options) -> str:
    """Import the scoring module: rtfin's own, or rtfin_scoring.py uploaded next to this job."""
    if opts.scoring_module:
        sys.path.insert(0, os.path.dirname(os.path.abspath(opts.scoring_module)))
        importlib.import_module("rtfin_scoring")
        return "rtfin_scoring"
    try:
        importlib.import_module("rtfin_cli.sentiment.scoring")
        return "rtfin_cli.sentiment.scoring"
    except ImportError:
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        importlib.import_module("rtfin_scoring")
        return "rtfin_scoring"


def make_score_udf(module: str, model: str, max_length: int, batch_size: int, runtime: str = "torch") -> Any:
    """The batched pandas UDF, one model per worker process (nested code only: workers can't import this file)."""
    from pyspark.sql.pandas.functions import pandas_udf

    def score(texts: Iterator[pd.Series]) -> Iterator[pd.DataFrame]:
        # Spark's worker calls importlib.invalidate_caches() before every task: on Python 3.11 it re-reads each
        # zip on the path (spark-core's 5,000 entries, up to 1 s). They never change. (Nested: see make_score_udf)
        for finder in list(sys.path_importer_cache.values()):
            if isinstance(finder, zipimport.zipimporter):
                setattr(finder, "invalidate_caches", lambda: None)  # noqa: B010 - this instance's method only
        scorer = importlib.import_module(module).get_scorer(model, max_length, batch_size, runtime)
        for series in texts:
            preds = scorer.predict(series.fillna("").astype(str).tolist())
            now = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
            yield pd.DataFrame({
                "label": [p.label for p in preds], "score": [p.score for p in preds],
                "sentiment": [p.sentiment for p in preds], "model": [scorer.name] * len(preds),
                "scored_at": [now] * len(preds),
            })  # fmt: skip

    return pandas_udf(score, RESULT_SCHEMA)  # type: ignore[call-overload]


def local_cores(master: str) -> int:
    """Task slots of a local master: local -> 1, local[N] -> N, local[*] -> the machine's cores."""
    inside = master.partition("[")[2].partition("]")[0].partition(",")[0]  # local[N,F] too
    return 1 if not inside else (os.cpu_count() or 1) if inside == "*" else int(inside)


def build_spark(opts: Options) -> Any:
    """The Spark session: the cluster's on Databricks, ``opts.master`` (local[*]) with the jars locally."""
    from pyspark.sql import SparkSession

    builder = SparkSession.builder.appName(f"rtfin-sentiment-{opts.profile}")
    conf = {"spark.sql.shuffle.partitions": str(opts.shuffle_partitions)}
    if opts.master:
        builder = builder.master(opts.master)
        if opts.master.startswith("local"):
            os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
            conf.update({"spark.ui.enabled": "false", "spark.ui.showConsoleProgress": "false"})
            slots = local_cores(opts.master)  # each worker's model gets its share, not a thread per core
            threads = os.environ.get("RTFIN_TORCH_THREADS") or str(max(1, slots // (opts.workers or slots)))
            conf["spark.executorEnv.RTFIN_TORCH_THREADS"] = threads
    if opts.jars:
        conf["spark.jars"] = opts.jars
    if opts.driver_memory:
        conf["spark.driver.memory"] = opts.driver_memory
    if opts.master.startswith("local"):  # we start the JVM: its options and heap are ours to choose
        if opts.java_options:
            conf["spark.driver.extraJavaOptions"] = opts.java_options
        # Spark keeps 300 MB of the heap for itself and refuses a heap under 1.5 times that; a smaller heap
        # (the local stack's) keeps a quarter of itself instead.
        heap = jvm_bytes(opts.driver_memory or "1g")
        if heap is not None and heap < 512 << 20:
            conf["spark.testing.reservedMemory"] = str(heap // 4)
    conf["spark.sql.execution.arrow.maxRecordsPerBatch"] = str(max(opts.batch_size * 16, 1024))
    for k, v in conf.items():
        builder = builder.config(k, v)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("WARN")
    if opts.scoring_module:
        spark.sparkContext.addPyFile(opts.scoring_module)
    return spark


def jvm_bytes(size: str) -> int | None:
    """Bytes of a JVM memory size as Spark writes it (512m, 2g, 1024k; no unit: MiB); None if not one."""
    size = size.strip().lower().removesuffix("b")
    unit = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30}.get(size[-1:], 1 << 20)
    digits = size.rstrip("kmg")
    return int(digits) * unit if digits.isdigit() else None


def warm_up(spark: Any, score_udf: Any, stopping: Callable[[], bool], tasks: int) -> None:
    """Run the query's transformation over a sample row per scoring task at start-up: every Python worker loads
    the model, and the JVM compiles and warms the plan's code (JSON parsing, the Arrow round trip, collect),
    which a cold first batch paid for (seconds). (Spark ends a worker unused for a minute: the next batch after
    a quiet minute loads the model again.)"""
    from pyspark.sql import functions as F

    doc = json.dumps({"id": "warm-up", "title": "warm up", "description": "warm up"})
    rows = spark.range(tasks, numPartitions=tasks).select(  # the Kafka source's columns, made in the JVM
        F.lit("warm-up").cast("binary").alias("key"), F.lit(doc).cast("binary").alias("value"),
        F.col("id").cast("int").alias("partition"), F.lit(0).cast("long").alias("offset"),
        F.current_timestamp().alias("timestamp"),
    )  # fmt: skip
    try:
        scored_rows(rows, score_udf, tasks).collect()
    except Exception as exc:  # the worker's Python error is the last "...Error: ..." line of Spark's text
        if stopping():
            return
        lines = [ln.strip() for ln in str(exc).splitlines() if "Error: " in ln]
        raise RuntimeError(f"the model did not load in Spark's workers: {(lines or [str(exc)])[-1]}") from exc


def scored_rows(df: Any, score_udf: Any, tasks: int) -> Any:
    """The query's transformation, built and analysed once when the query starts (not in every micro-batch):
    parse the JSON with the explicit schema, say why a row is bad (``error``, null: good; a bad row rides
    along, scored ""), score title (+ description), one scoring task per worker (the source's partitions, a
    multiple of the tasks, see start_query, merged without a shuffle). Key and value only for bad rows."""
    from pyspark.sql import functions as F

    text = F.col("value").cast("string")
    error = (
        F.when(F.col("value").isNull(), F.lit("empty message"))
        .when(F.try_parse_json(text).isNull(), F.lit("not valid JSON"))
        .when(F.coalesce(F.trim(F.col("doc.id")), F.lit("")) == "", F.lit("missing id"))
        .when(F.col("doc.title").isNull(), F.lit("missing title"))
    )
    desc, title = F.col("doc.description"), F.col("doc.title")
    has_desc = F.length(F.trim(F.coalesce(desc, F.lit("")))) > 0
    body = F.when(has_desc, F.concat_ws(". ", title, desc)).otherwise(title)
    bad = F.col("error").isNotNull()
    rows = df.select(
        "key", "value", "partition", "offset", "timestamp", F.from_json(text, NEWS_SCHEMA).alias("doc")
    )
    return rows.withColumn("error", error).coalesce(tasks).select(
        F.when(bad, F.col("key")).alias("key"), F.when(bad, F.col("value")).alias("value"), "partition", "offset",
        "timestamp", "error", "doc.id", "doc.published_utc", "doc.title", "doc.tickers",
        score_udf(F.coalesce(body, F.lit(""))).alias("r"),
    )  # fmt: skip


def process_batch(df: Any, sink: Any, progress: Progress) -> None:
    """One micro-batch: collect the scored rows, drop those already committed (a batch replayed after a crash),
    write both topics and commit the offsets atomically."""
    t0 = time.monotonic()
    committed = sink.last_committed  # sink.write below moves it, after the filter has used it
    rows = df.collect()
    out = [r for r in rows if r.offset >= committed.get(r.partition, 0)]
    progress.skipped += len(rows) - len(out)
    scored = [r for r in out if r.error is None]
    failed = [r for r in out if r.error is not None]
    offsets: dict[int, int] = {}
    for r in out:
        offsets[r.partition] = max(offsets.get(r.partition, 0), r.offset + 1)
    if offsets:
        sink.write(scored, failed, offsets)
    progress.add(len(scored), len(failed), offsets, time.monotonic() - t0)


def warm_up_source(spark: Any, opts: Options, sink: Any, partitions: int) -> None:
    """Read the first record of each partition through Spark's Kafka source (a batch read) before the query
    starts: the JVM loads and compiles the Kafka client's code here rather than in the first micro-batch."""
    kafka = kafka_module(opts)
    options = kafka.source_options(opts, "earliest")
    del options["maxOffsetsPerTrigger"]  # a streaming option
    options["endingOffsets"] = kafka.first_offsets(sink.consumer, opts.topic_in, partitions)
    spark.read.format("kafka").options(**options).load().select("key", "value").collect()


def start_query(spark: Any, opts: Options, sink: Any, score_udf: Any, progress: Progress, tasks: int) -> Any:
    """Start the streaming query: the Kafka source (from the group's offsets on a fresh checkpoint; ranges split
    when the partitions do not divide evenly among the scoring tasks), one transactional write per
    micro-batch, availableNow with ``once``, else every ``trigger_interval``."""
    partitions = sink.consumer.list_topics(opts.topic_in, timeout=30).topics[opts.topic_in].partitions
    kafka = kafka_module(opts)
    start = kafka.starting_offsets(opts, sink.last_committed, len(partitions))
    with contextlib.suppress(Exception):  # a warm-up only: whatever fails here, the query meets and reports
        warm_up_source(spark, opts, sink, len(partitions))
    split = {"minPartitions": str(tasks * len(partitions))} if len(partitions) % tasks else {}
    source = spark.readStream.format("kafka").options(**kafka.source_options(opts, start), **split)

    def batch(df: Any, batch_id: int) -> None:
        progress.in_batch = True
        try:
            process_batch(df, sink, progress)
        finally:
            progress.in_batch = False

    rows = scored_rows(source.load(), score_udf, tasks)
    writer = rows.writeStream.foreachBatch(batch).option("checkpointLocation", opts.checkpoint)
    trigger: Any = {"availableNow": True} if opts.once else {"processingTime": opts.trigger_interval}
    return writer.trigger(**trigger).queryName(f"rtfin-sentiment-{opts.profile}").start()


def _follow(
    query: Any,
    progress: Progress,
    stopping: Callable[[], bool],
    report: Callable[[Progress], None],
    poll_s: float,
) -> None:
    """Wait for the query, reporting progress; on a stop request let the running batch commit, then stop."""
    try:
        while query.isActive:
            if stopping():
                deadline = time.monotonic() + 60
                while progress.in_batch and time.monotonic() < deadline:
                    time.sleep(0.2)
                query.stop()
                break
            query.awaitTermination(poll_s)
            report(progress)
        error = query.exception()
        if error is not None and not stopping():
            raise RuntimeError(f"sentiment query failed: {error}")
    except RuntimeError:
        raise
    except Exception as exc:
        # A supervisor's SIGTERM to the process group also stops the JVM: whatever the query was
        # doing is uncommitted and will be replayed, so a requested stop is still a clean stop.
        if not stopping():
            raise RuntimeError(f"sentiment query failed: {exc}") from exc


def run(
    opts: Options,
    on_progress: Callable[[Progress], None] | None = None,
    stop_requested: Callable[[], bool] | None = None,
    poll_s: float = 1.0,
) -> Progress:
    """Run the streaming query until it ends (``once``), fails, or a stop is requested / SIGTERM / Ctrl-C."""
    t0 = time.time()
    spark = build_spark(opts)
    score_udf = make_score_udf(
        scoring_module_name(opts), opts.model, opts.max_length, opts.batch_size, opts.runtime
    )
    sink = kafka_module(opts).TransactionalSink(opts)
    progress, stop = Progress(), threading.Event()
    if threading.current_thread() is threading.main_thread():  # after Spark installed its own SIGINT handler
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())

    def stopping() -> bool:
        return stop.is_set() or (stop_requested is not None and stop_requested())

    report = on_progress or (lambda _p: None)
    try:
        tasks = opts.workers or spark.sparkContext.defaultParallelism
        warm_up(spark, score_udf, stopping, tasks)
        if not stopping():  # a stop during start-up (SIGTERM to the group also ends the JVM): nothing to run
            query = start_query(spark, opts, sink, score_udf, progress, tasks)
            progress.startup_s = time.time() - t0
            _follow(query, progress, stopping, report, poll_s)
            progress.spark_ms = _spark_durations(query)
    finally:
        with contextlib.suppress(Exception):  # shutting down: the JVM may already be gone
            sink.close()
        if opts.master:  # we created the session; on Databricks the cluster owns it
            with contextlib.suppress(Exception):
                spark.stop()
    report(progress)
    return progress


def _spark_durations(query: Any) -> dict[str, int]:
    """Where Spark spent the recent batches' time (its progress reports: addBatch is our foreachBatch)."""
    with contextlib.suppress(Exception):  # a stopped query may have no reports left
        return dict(sum((Counter(report["durationMs"]) for report in query.recentProgress), Counter()))
    return {}


def main(argv: list[str] | None = None) -> int:
    """The Databricks entry point: run with the arguments, a JSON progress line per new batch on stdout."""
    opts = parse_args(sys.argv[1:] if argv is None else argv)

    def log(p: Progress) -> None:
        if p.batches != getattr(log, "seen", -1):
            log.seen = p.batches  # type: ignore[attr-defined]
            print(json.dumps({"event": "progress", **p.as_dict()}), flush=True)

    run(opts, on_progress=log)
    return 0


if __name__ == "__main__":
    sys.exit(main())
