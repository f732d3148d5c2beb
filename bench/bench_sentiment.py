"""Sentiment throughput: the batched scoring path vs. calling the model once per row (the seed's approach).

Three figures, each against a baseline measured in the same run:
  sentiment.model_batched_hps   headlines/s of scorer.predict(batch)    vs one predict([row]) per headline
  sentiment.spark_udf_hps       headlines/s of the job's pandas UDF in Spark local[*]
                                vs a row-at-a-time Python UDF calling the model per row (the seed)
  sentiment.e2e_hps             headlines/s through Kafka -> jobs/sentiment_stream.py (--once) -> Kafka,
                                vs the in-process batched model rate (the share of raw model speed kept)
Model: the offline default rtfin-minilm-fin (no hub access needed). Run: python -m bench bench_sentiment
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path

from bench import Result

ROOT = Path(__file__).resolve().parents[1]
MODEL = "rtfin-minilm-fin"
N_BATCHED = int(os.environ.get("BENCH_SENTIMENT_N", "1200"))
N_ROW = int(os.environ.get("BENCH_SENTIMENT_N_ROW", "240"))


def _headlines(n: int) -> list[str]:
    from rtfin_cli.sentiment.evaluate import read_tsv
    from rtfin_cli.sentiment.finetune import DATA_DIR

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


def _end_to_end(job, model_hps: float) -> Result:  # type: ignore[no-untyped-def]
    from rtfin_cli.kafka.admin import create_topics
    from rtfin_cli.kafka.clients import producer
    from rtfin_cli.local.kafka import KafkaBroker
    from rtfin_cli.local.supervisor import free_port
    from rtfin_cli.locate import SPARK_VERSION, jar_files
    from rtfin_cli.settings import KafkaSettings

    cache = ROOT / ".cache"
    with tempfile.TemporaryDirectory(prefix="bench-sentiment-") as tmp:
        broker = KafkaBroker(
            data_dir=Path(tmp), cache_dir=cache, port=free_port(), controller_port=free_port()
        )
        broker.start(timeout=180)
        try:
            kafka = KafkaSettings(bootstrap=broker.bootstrap)
            create_topics(kafka)
            p = producer(kafka)
            for i, title in enumerate(_headlines(N_BATCHED)):
                doc = {
                    "id": f"b{i}",
                    "title": title,
                    "published_utc": "2026-11-25T12:00:00Z",
                    "tickers": ["X"],
                }
                p.produce(kafka.topics.news_raw, key=doc["id"], value=json.dumps(doc))
            p.flush(60)
            opts = job.Options(
                bootstrap=broker.bootstrap, model=MODEL, checkpoint=str(Path(tmp) / "ckpt"), once=True,
                master="local[*]", driver_memory="1g", max_offsets_per_trigger=N_BATCHED * 2,
                jars=",".join(map(str, jar_files(cache, f"spark-kafka-{SPARK_VERSION}"))),
            )  # fmt: skip
            t0 = time.perf_counter()
            progress = job.run(opts)
            wall = time.perf_counter() - t0
        finally:
            broker.stop()
    assert progress.scored == N_BATCHED, progress
    # rows/s of the batch itself (scoring + Kafka transaction), and wall time including Spark/model start-up
    return Result("sentiment.e2e_hps", progress.rows_per_s, "headlines/s", model_hps,
                  "in-process batched model", "ratio ~1 (Spark + Kafka overhead small)",
                  {"wall_s_including_startup": wall, "n": N_BATCHED})  # fmt: skip


def run() -> list[Result]:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from rtfin_cli.sentiment.runner import load_job

    job = load_job()
    model, model_hps = _model_level()
    return [model, _spark_level(job), _end_to_end(job, model_hps)]
