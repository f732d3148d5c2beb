"""Sentiment stage: model loading and batch scoring, the Spark job runner, Databricks submission."""

from __future__ import annotations

from pathlib import Path

JOB_FILE = Path(__file__).resolve().parents[2] / "jobs" / "sentiment_stream.py"
JOB_KAFKA_FILE = JOB_FILE.with_name("sentiment_kafka.py")  # the job's Kafka side, shipped beside it
DATA_DIR = Path(__file__).resolve().parent / "data"
