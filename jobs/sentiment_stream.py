"""rtfin sentiment job: Kafka rtfin.news.raw -> batched sentiment model -> rtfin.news.sentiment (+ rtfin.dlq).

Runs unchanged as a Databricks ``spark_python_task`` and locally (``rtfin sentiment run`` imports it and
calls :func:`run`). Options come from flags or a JSON file (``--config``), with the same names in both.
Each micro-batch drops rows below the group's committed offsets (already written), parses the JSON with
an explicit schema, sends non-JSON and rows without id or title to the DLQ, scores title (+ description)
in a pandas UDF that loads the model once per worker, and writes results, dead letters and the batch's
end offsets for the consumer group in ONE Kafka transaction: a crash neither loses nor duplicates an
article, and `rtfin lag` sees the group's progress. Result timestamps are the article's published time.
The SASL password comes from RTFIN__KAFKA__SASL_PASSWORD or ``--secret-scope``, never from argv.
"""

import argparse
import contextlib
import importlib
import json
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime
from typing import Any

import pandas as pd

STAGE = "sentiment"
NEWS_SCHEMA = (
    "id STRING, published_utc STRING, title STRING, description STRING, article_url STRING, author STRING, "
    "publisher STRUCT<name: STRING, homepage_url: STRING, logo_url: STRING, favicon_url: STRING>, "
    "tickers ARRAY<STRING>, keywords ARRAY<STRING>, image_url STRING, amp_url STRING, ingested_at STRING"
)
RESULT_SCHEMA = "label STRING, score DOUBLE, sentiment DOUBLE, model STRING, scored_at STRING"
# The dead-letter headers: the names of rtfin_cli/kafka/deadletter.py, copied because this job runs without
# rtfin installed (tests/unit/test_sentiment_job.py holds the copies equal).
DLQ_HEADERS = ("rtfin-error", "rtfin-source", "rtfin-stage", "rtfin-offset")
# A batch's transaction that takes longer than this is stuck: send_offsets_to_transaction() can block
# forever when the group coordinator went away mid-transaction (confluentinc/librdkafka#5456). The job then
# exits (code 75); a restart fences the open transaction and resumes from the committed offsets.
TXN_DEADLINE_ENV = "RTFIN_SENTIMENT_TXN_DEADLINE_S"
TXN_DEADLINE_S = 300.0  # > send_offsets (60) + commit (120) + abort (60) when each takes its whole timeout


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
    master: str = ""  # empty: the cluster's (Databricks); local[*] for `rtfin sentiment run`
    jars: str = ""  # comma-separated jar paths (the Kafka connector in local mode)
    driver_memory: str = ""
    shuffle_partitions: int = 2


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
    in_batch: bool = False

    @property
    def rows_per_s(self) -> float:
        return self.last_batch_rows / self.last_batch_s if self.last_batch_s else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "rows_per_s": self.rows_per_s}

    def add(self, scored: int, failed: int, offsets: dict[int, int], seconds: float) -> None:
        """Count one committed batch."""
        self.batches, self.rows = self.batches + 1, self.rows + scored + failed
        self.scored, self.dlq = self.scored + scored, self.dlq + failed
        self.offsets.update(offsets)
        self.last_batch_rows, self.last_batch_s = scored + failed, seconds


# -- Kafka ------------------------------------------------------------------------------------------
def _sasl_password(opts: Options) -> str:
    if opts.sasl_password:
        return opts.sasl_password
    if os.environ.get("RTFIN__KAFKA__SASL_PASSWORD"):
        return os.environ["RTFIN__KAFKA__SASL_PASSWORD"]
    if opts.secret_scope:  # Databricks existing cluster: read the scope at run time
        from pyspark.dbutils import DBUtils  # type: ignore[import-not-found]
        from pyspark.sql import SparkSession

        dbutils = DBUtils(SparkSession.builder.getOrCreate())
        return str(dbutils.secrets.get(opts.secret_scope, "kafka-sasl-password"))
    return ""


def _librdkafka_conf(opts: Options) -> dict[str, Any]:
    conf: dict[str, Any] = {"bootstrap.servers": opts.bootstrap, "security.protocol": opts.security_protocol}
    if opts.security_protocol.startswith("SASL"):
        conf.update({"sasl.mechanism": opts.sasl_mechanism, "sasl.username": opts.sasl_username})
        conf["sasl.password"] = _sasl_password(opts)
    return conf


def source_options(opts: Options, starting_offsets: str) -> dict[str, str]:
    """Options of Spark's Kafka source (the JVM client), SASL included when the profile has it."""
    out = {
        "kafka.bootstrap.servers": opts.bootstrap,
        "subscribe": opts.topic_in,
        "startingOffsets": starting_offsets,
        "maxOffsetsPerTrigger": str(opts.max_offsets_per_trigger),
        "failOnDataLoss": str(opts.fail_on_data_loss).lower(),
        "kafka.security.protocol": opts.security_protocol,
    }
    if opts.security_protocol.startswith("SASL"):
        module = (
            "org.apache.kafka.common.security.plain.PlainLoginModule"
            if opts.sasl_mechanism == "PLAIN"
            else "org.apache.kafka.common.security.scram.ScramLoginModule"
        )
        user, password = json.dumps(opts.sasl_username), json.dumps(_sasl_password(opts))
        out["kafka.sasl.mechanism"] = opts.sasl_mechanism
        out["kafka.sasl.jaas.config"] = f"{module} required username={user} password={password};"
    return out


class TransactionalSink:
    """Writes a batch's results + DLQ records and commits the group offsets in one Kafka transaction."""

    def __init__(self, opts: Options) -> None:
        from confluent_kafka import Consumer, Producer

        self.opts = opts
        base = _librdkafka_conf(opts)
        self.consumer = Consumer(
            {**base, "group.id": opts.group, "enable.auto.commit": False, "isolation.level": "read_committed"}
        )
        txn = {"transactional.id": f"{opts.group}.{opts.topic_in}", "enable.idempotence": True}
        self.producer = Producer({**base, **txn, "compression.type": "lz4", "linger.ms": 5})
        self.producer.init_transactions(60)  # fences (and aborts) a crashed predecessor's transaction
        self.last_committed = self.committed()  # then kept up to date here: the job is the group's writer

    def committed(self) -> dict[int, int]:
        """partition -> next offset to process, for partitions the group has committed."""
        from confluent_kafka import KafkaError, KafkaException, TopicPartition

        topic = self.opts.topic_in
        meta = self.consumer.list_topics(topic, timeout=30)
        parts = [TopicPartition(topic, p) for p in sorted(meta.topics[topic].partitions)]
        for attempt in range(30):  # the group coordinator may still be loading (retriable)
            try:
                done = self.consumer.committed(parts, timeout=30)
                return {tp.partition: tp.offset for tp in done if tp.offset >= 0}
            except KafkaException as exc:
                err = exc.args[0]
                if attempt == 29 or not (err.retriable() or err.code() == KafkaError.NOT_COORDINATOR):
                    raise
                time.sleep(1)
        return {}

    def write(self, scored: list[Any], failed: list[Any], offsets: dict[int, int]) -> None:
        """One transaction, under a deadline (see TXN_DEADLINE_S)."""
        deadline = float(os.environ.get(TXN_DEADLINE_ENV) or TXN_DEADLINE_S)
        timer = threading.Timer(deadline, _transaction_stuck, args=(deadline,))
        timer.daemon = True
        timer.start()
        try:
            self._write(scored, failed, offsets)
        finally:
            timer.cancel()

    def _write(self, scored: list[Any], failed: list[Any], offsets: dict[int, int]) -> None:
        from confluent_kafka import TopicPartition

        o = self.opts
        self.producer.begin_transaction()
        try:
            for r in scored:
                ts = _epoch_ms(r.published_utc) or int(r.timestamp.timestamp() * 1000)
                self._produce(o.topic_out, r.id.encode(), json.dumps(_result(r)).encode(), ts)
            for r in failed:
                values = (r.error, o.topic_in, STAGE, f"{r.partition}:{r.offset}")
                headers = [(k, v.encode()) for k, v in zip(DLQ_HEADERS, values, strict=True)]
                key, value = (
                    bytes(b) if b is not None else None for b in (r.key, r.value)
                )  # Spark: bytearray
                self._produce(o.topic_dlq, key, value, int(r.timestamp.timestamp() * 1000), headers)
            positions = [TopicPartition(o.topic_in, p, off) for p, off in sorted(offsets.items())]
            self.producer.send_offsets_to_transaction(positions, self.consumer.consumer_group_metadata(), 60)
            self.producer.commit_transaction(120)
            self.last_committed.update(offsets)
        except BaseException:
            self.producer.abort_transaction(60)
            raise

    def _produce(self, topic: str, key: Any, value: Any, ts: int, headers: Any = None) -> None:
        while True:
            try:
                self.producer.produce(topic, key=key, value=value, timestamp=ts, headers=headers)
                return
            except BufferError:
                self.producer.poll(0.1)

    def close(self) -> None:
        self.consumer.close()
        self.producer.flush(30)


def _result(r: Any) -> dict[str, Any]:
    """The rtfin.news.sentiment value of a scored row."""
    return {
        "id": r.id, "published_utc": r.published_utc, "title": r.title, "tickers": list(r.tickers or []),
        "label": r.r.label, "score": r.r.score, "sentiment": r.r.sentiment, "model": r.r.model,
        "scored_at": r.r.scored_at,
    }  # fmt: skip


def _transaction_stuck(deadline: float) -> None:
    """Exit hard: a blocked librdkafka call cannot be interrupted; the open transaction stays invisible."""
    print(
        f"sentiment job: the Kafka transaction of a batch is stuck after {deadline:g}s (group coordinator "
        "lost mid-transaction); exiting so that a restart resumes from the committed offsets",
        file=sys.stderr,
        flush=True,
    )
    os._exit(75)


def _epoch_ms(iso: str | None) -> int | None:
    """Epoch ms of an ISO-8601 time (UTC unless it has an offset); None when missing or unreadable."""
    if not iso:
        return None
    try:
        dt = datetime.fromisoformat(iso.replace("Z", "+00:00"))
    except ValueError:
        return None
    return int((dt if dt.tzinfo else dt.replace(tzinfo=UTC)).timestamp() * 1000)


def starting_offsets(opts: Options, committed: dict[int, int], partitions: int) -> str:
    """Resume from the group's offsets when there is no checkpoint yet (else opts.starting_offsets)."""
    if not committed:
        return opts.starting_offsets
    default = -2 if opts.starting_offsets == "earliest" else -1
    return json.dumps({opts.topic_in: {str(p): committed.get(p, default) for p in range(partitions)}})


# -- Spark --------------------------------------------------------------------------------------------
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


def make_score_udf(module: str, model: str, max_length: int, batch_size: int) -> Any:
    """The batched pandas UDF: model loaded once per worker process, scored batch_size texts at a time."""
    from pyspark.sql.functions import pandas_udf

    def score(texts: Iterator[pd.Series]) -> Iterator[pd.DataFrame]:
        scorer = importlib.import_module(module).get_scorer(model, max_length, batch_size)
        for series in texts:
            preds = scorer.predict(series.fillna("").astype(str).tolist())
            now = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
            yield pd.DataFrame({
                "label": [p.label for p in preds], "score": [p.score for p in preds],
                "sentiment": [p.sentiment for p in preds], "model": [scorer.name] * len(preds),
                "scored_at": [now] * len(preds),
            })  # fmt: skip

    return pandas_udf(score, RESULT_SCHEMA)  # type: ignore[call-overload]


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
    if opts.jars:
        conf["spark.jars"] = opts.jars
    if opts.driver_memory:
        conf["spark.driver.memory"] = opts.driver_memory
    conf["spark.sql.execution.arrow.maxRecordsPerBatch"] = str(max(opts.batch_size * 16, 1024))
    for k, v in conf.items():
        builder = builder.config(k, v)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("WARN")
    if opts.scoring_module:
        spark.sparkContext.addPyFile(opts.scoring_module)
    return spark


def _classified(df: Any, committed: dict[int, int]) -> Any:
    """The batch's rows not committed yet, with the parsed document and why a row is bad (null: good)."""
    from pyspark.sql import functions as F

    rows = df.select("key", "value", "partition", "offset", "timestamp")
    for p, off in committed.items():  # a replayed batch after a crash: skip what is already committed
        rows = rows.where((F.col("partition") != p) | (F.col("offset") >= off))
    text = F.col("value").cast("string")
    error = (
        F.when(F.col("value").isNull(), F.lit("empty message"))
        .when(F.try_parse_json(text).isNull(), F.lit("not valid JSON"))
        .when(F.coalesce(F.trim(F.col("doc.id")), F.lit("")) == "", F.lit("missing id"))
        .when(F.col("doc.title").isNull(), F.lit("missing title"))
    )
    return rows.withColumn("doc", F.from_json(text, NEWS_SCHEMA)).withColumn("error", error)


def process_batch(df: Any, sink: TransactionalSink, score_udf: Any, progress: Progress) -> None:
    """One micro-batch: classify, score, write both topics and commit the offsets atomically."""
    from pyspark.sql import functions as F

    t0 = time.monotonic()
    desc, title = F.col("doc.description"), F.col("doc.title")
    has_desc = F.length(F.trim(F.coalesce(desc, F.lit("")))) > 0
    body = F.when(has_desc, F.concat_ws(". ", title, desc)).otherwise(title)
    # One Spark job per batch: bad rows ride along (scored as "", ignored) instead of a second scan.
    out = _classified(df, sink.last_committed).select(
        "key", "value", "partition", "offset", "timestamp", "error", "doc.id", "doc.published_utc",
        "doc.title", "doc.tickers", score_udf(F.coalesce(body, F.lit(""))).alias("r"),
    ).collect()  # fmt: skip
    scored = [r for r in out if r.error is None]
    failed = [r for r in out if r.error is not None]
    offsets: dict[int, int] = {}
    for r in out:
        offsets[r.partition] = max(offsets.get(r.partition, 0), r.offset + 1)
    if offsets:
        sink.write(scored, failed, offsets)
    progress.add(len(scored), len(failed), offsets, time.monotonic() - t0)


def start_query(
    spark: Any, opts: Options, sink: TransactionalSink, score_udf: Any, progress: Progress
) -> Any:
    """Start the streaming query: the Kafka source (from the group's offsets on a fresh checkpoint), one
    transactional write per micro-batch, availableNow with ``once``, else every ``trigger_interval``."""
    partitions = sink.consumer.list_topics(opts.topic_in, timeout=30).topics[opts.topic_in].partitions
    start = starting_offsets(opts, sink.last_committed, len(partitions))
    source = spark.readStream.format("kafka").options(**source_options(opts, start))

    def batch(df: Any, batch_id: int) -> None:
        progress.in_batch = True
        try:
            process_batch(df, sink, score_udf, progress)
        finally:
            progress.in_batch = False

    writer = source.load().writeStream.foreachBatch(batch).option("checkpointLocation", opts.checkpoint)
    trigger = {"availableNow": True} if opts.once else {"processingTime": opts.trigger_interval}
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
    spark = build_spark(opts)
    score_udf = make_score_udf(scoring_module_name(opts), opts.model, opts.max_length, opts.batch_size)
    sink = TransactionalSink(opts)
    progress, stop = Progress(), threading.Event()
    if threading.current_thread() is threading.main_thread():  # after Spark installed its own SIGINT handler
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())

    def stopping() -> bool:
        return stop.is_set() or (stop_requested is not None and stop_requested())

    report = on_progress or (lambda _p: None)
    query = start_query(spark, opts, sink, score_udf, progress)
    try:
        _follow(query, progress, stopping, report, poll_s)
    finally:
        _quietly(sink.close)
        if opts.master:  # we created the session; on Databricks the cluster owns it
            _quietly(spark.stop)
    report(progress)
    return progress


def _quietly(fn: Callable[[], Any]) -> None:
    with contextlib.suppress(Exception):  # shutting down: the JVM may already be gone
        fn()


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
