"""Run jobs/sentiment_stream.py in Spark local mode with the profile's settings (``rtfin sentiment run``)."""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

from rtfin_cli.errors import ProcessError, ServiceUnavailable
from rtfin_cli.locate import SPARK_VERSION, jar_files
from rtfin_cli.report import Event, EventKind, NullReporter, Reporter
from rtfin_cli.sentiment import JOB_FILE
from rtfin_cli.settings import RtfinSettings, resolve_path, secret

STAGE = "sentiment"


def load_job(path: Path = JOB_FILE) -> ModuleType:
    """The job file as a module (it is a script for Databricks, not part of the rtfin package)."""
    if not path.exists():
        raise ProcessError(f"the Spark job {path} is missing", "Run rtfin from a checkout of the repository.")
    spec = importlib.util.spec_from_file_location("rtfin_sentiment_stream", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # pickling the UDF refers to the module by name
    spec.loader.exec_module(module)
    return module


def job_options(s: RtfinSettings, *, profile: str = "local", databricks: bool = False) -> dict[str, Any]:
    """The job's options from settings; the SASL password is never among them (env/secret scope)."""
    k, t, se = s.kafka, s.kafka.topics, s.sentiment
    opts: dict[str, Any] = {
        "profile": profile, "bootstrap": k.bootstrap, "topic_in": t.news_raw, "topic_out": t.news_sentiment,
        "topic_dlq": t.dlq, "group": se.group, "model": se.model, "runtime": se.runtime, "batch_size": se.batch_size,
        "max_length": se.max_length, "checkpoint": se.checkpoint_dir, "trigger_interval": se.trigger_interval,
        "starting_offsets": se.starting_offsets, "max_offsets_per_trigger": se.max_offsets_per_trigger,
        "fail_on_data_loss": se.fail_on_data_loss, "security_protocol": k.security_protocol,
        "sasl_mechanism": k.sasl_mechanism, "sasl_username": k.sasl_username or "",
    }  # fmt: skip
    if databricks:
        opts["checkpoint"] = s.databricks.checkpoint_dir  # durable: a new cluster or a retry resumes from it
        opts["shaded_kafka"] = True  # Databricks runtimes ship the Kafka client relocated (kafkashaded.*)
    else:
        opts["checkpoint"] = str(resolve_path(se.checkpoint_dir))
    return opts


def run_local(
    s: RtfinSettings,
    *,
    once: bool = False,
    profile: str = "local",
    reporter: Reporter | None = None,
) -> dict[str, Any]:
    """Run the streaming job in Spark ``local[*]`` until it ends (``once``), fails, or SIGTERM/Ctrl-C.

    Emits a started event, then the job's progress (batches, rows, offsets) about once a second;
    returns the final progress.
    """
    from rtfin_cli.kafka.clients import check_reachable

    rep = reporter or NullReporter()
    rep.emit(
        Event(EventKind.STARTED, STAGE, {"master": s.sentiment.spark_master, "model": s.sentiment.model})
    )

    meta = check_reachable(s.kafka)
    for topic in (s.kafka.topics.news_raw, s.kafka.topics.news_sentiment, s.kafka.topics.dlq):
        if topic not in meta.topics:
            raise ServiceUnavailable(
                f"topic {topic} does not exist", "Create the topics with `rtfin topics create`."
            )
    job = load_job()
    values = job_options(s, profile=profile)
    jars = jar_files(Path(s.local.cache_dir), f"spark-kafka-{SPARK_VERSION}")
    values.update(
        once=once, master=s.sentiment.spark_master, jars=",".join(map(str, jars)),
        driver_memory=s.sentiment.driver_memory, shuffle_partitions=s.sentiment.shuffle_partitions,
        workers=s.sentiment.workers, java_options=s.sentiment.java_options or "",
        sasl_password=secret(s.kafka.sasl_password),
    )  # fmt: skip
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    try:
        final = job.run(job.Options(**values), on_progress=lambda p: rep.emit(_progress(p)))
    except RuntimeError as exc:
        raise ProcessError(
            str(exc).splitlines()[0][:500], "See the log above; fix and re-run (it resumes)."
        ) from None
    return dict(final.as_dict())


def _progress(p: Any) -> Event:
    return Event(EventKind.PROGRESS, STAGE, p.as_dict())
