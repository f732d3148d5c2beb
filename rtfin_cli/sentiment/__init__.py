"""Sentiment stage: model loading and batch scoring, the Spark job runner, Databricks submission."""

from __future__ import annotations

from pathlib import Path

JOB_FILE = Path(__file__).resolve().parents[2] / "jobs" / "sentiment_stream.py"
DATA_DIR = Path(__file__).resolve().parent / "data"
