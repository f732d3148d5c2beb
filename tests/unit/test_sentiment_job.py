"""jobs/sentiment_stream.py pieces that need no Spark: arguments, Kafka source options, resume offsets."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rtfin_cli.sentiment.runner import job_options, load_job
from rtfin_cli.settings import load_settings

job = load_job()
kafka = job.kafka_module(job.Options())  # the job's Kafka side (jobs/sentiment_kafka.py)


def test_args_from_json_config_overridden_by_flags(tmp_path: Path) -> None:
    conf = tmp_path / "job.json"
    conf.write_text(json.dumps({"bootstrap": "b:9092", "model": "m", "batch_size": 8, "once": True}))
    opts = job.parse_args(["--config", str(conf), "--batch-size", "32", "--fail-on-data-loss", "false"])
    assert (opts.bootstrap, opts.model, opts.batch_size, opts.once, opts.fail_on_data_loss) == (
        "b:9092",
        "m",
        32,
        True,
        False,
    )
    assert opts.group == "rtfin-sentiment" and opts.topic_in == "rtfin.news.raw"


def test_unknown_config_key_and_password_flag_are_rejected(tmp_path: Path) -> None:
    conf = tmp_path / "job.json"
    conf.write_text(json.dumps({"bootstarp": "x"}))
    with pytest.raises(SystemExit):
        job.parse_args(["--config", str(conf)])
    with pytest.raises(SystemExit):
        job.parse_args(["--sasl-password", "secret"])  # secrets never on argv


def test_settings_map_to_job_options_and_back() -> None:
    s = load_settings(environ={"RTFIN__SENTIMENT__BATCH_SIZE": "16"}).settings
    opts = job.Options(**job_options(s))
    assert opts.batch_size == 16 and opts.model == "rtfin-minilm-fin" and opts.group == "rtfin-sentiment"
    assert Path(opts.checkpoint).is_absolute()


def test_sasl_source_options_take_the_password_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RTFIN__KAFKA__SASL_PASSWORD", 'pw"x')
    opts = job.Options(security_protocol="SASL_SSL", sasl_mechanism="SCRAM-SHA-512", sasl_username="u")
    src = kafka.source_options(opts, "earliest")
    assert src["kafka.security.protocol"] == "SASL_SSL" and src["subscribe"] == "rtfin.news.raw"
    assert src["kafka.sasl.jaas.config"] == (
        'org.apache.kafka.common.security.scram.ScramLoginModule required username="u" password="pw\\"x";'
    )
    assert kafka._librdkafka_conf(opts)["sasl.password"] == 'pw"x'


def test_fresh_checkpoint_resumes_from_the_group_offsets() -> None:
    opts = job.Options(topic_in="raw")
    assert kafka.starting_offsets(opts, {}, 3) == "earliest"
    assert json.loads(kafka.starting_offsets(opts, {0: 5, 2: 9}, 3)) == {"raw": {"0": 5, "1": -2, "2": 9}}


def test_event_time_parsing() -> None:
    assert kafka._epoch_ms("2024-06-24T18:33:53Z") == 1719254033000
    assert kafka._epoch_ms("garbage") is None and kafka._epoch_ms(None) is None


def test_dead_letter_header_names_match_the_shared_contract() -> None:
    from rtfin_cli.kafka import deadletter

    assert kafka.DLQ_HEADERS == deadletter.HEADERS
    assert deadletter.headers("bad", "topic", kafka.STAGE, (1, 7)) == list(
        zip(kafka.DLQ_HEADERS, ("bad", "topic", "sentiment", "1:7"), strict=True)
    )


def test_local_task_slots_split_the_cores_between_the_scoring_workers() -> None:
    assert [job.local_cores(m) for m in ("local", "local[3]", "local[2,4]")] == [1, 3, 2]
    assert job.local_cores("local[*]") >= 1
    assert job.Options().workers == 0  # one per core


def test_the_source_warm_up_reads_the_first_record_of_each_partition() -> None:
    class _Consumer:
        def get_watermark_offsets(self, tp: object, timeout: float) -> tuple[int, int]:
            return {0: (5, 9), 1: (0, 0), 2: (3, 4)}[tp.partition]  # type: ignore[attr-defined]

    assert json.loads(kafka.first_offsets(_Consumer(), "raw", 3)) == {"raw": {"0": 6, "1": 0, "2": 4}}


class _Builder:
    """SparkSession.builder's chain, recording the conf it was given (no JVM)."""

    def __init__(self) -> None:
        self.conf: dict[str, str] = {}

    def appName(self, name: str) -> _Builder:  # noqa: N802 - Spark's name
        return self

    def master(self, master: str) -> _Builder:
        self.conf["master"] = master
        return self

    def config(self, key: str, value: str) -> _Builder:
        self.conf[key] = value
        return self

    def getOrCreate(self) -> object:  # noqa: N802 - Spark's name
        class _Context:
            def setLogLevel(self, level: str) -> None:  # noqa: N802
                pass

        return type("Spark", (), {"sparkContext": _Context()})()


@pytest.mark.parametrize(
    ("master", "memory", "java", "expected_java", "reserved"),
    [
        ("local[*]", "256m", "-XX:+UseSerialGC", "-XX:+UseSerialGC", str((256 << 20) // 4)),
        ("local[2]", "160", "", None, str((160 << 20) // 4)),  # no unit: MiB, as Spark reads it
        ("local[*]", "1g", "-Xss1m", "-Xss1m", None),  # Spark's own 300 MB fits: untouched
        ("local[*]", "", "", None, None),  # Spark's default heap (1g)
        ("", "256m", "-XX:+UseSerialGC", None, None),  # Databricks: the cluster's JVM, not ours
    ],
)
def test_local_driver_gets_its_jvm_options_and_a_small_heap_keeps_a_quarter_for_spark(
    monkeypatch: pytest.MonkeyPatch,
    master: str,
    memory: str,
    java: str,
    expected_java: str | None,
    reserved: str | None,
) -> None:
    import pyspark.sql

    builder = _Builder()
    monkeypatch.setattr(pyspark.sql, "SparkSession", type("SparkSession", (), {"builder": builder}))
    job.build_spark(job.Options(master=master, driver_memory=memory, java_options=java))
    assert builder.conf.get("spark.driver.extraJavaOptions") == expected_java
    assert builder.conf.get("spark.testing.reservedMemory") == reserved
    if reserved:  # Spark accepts a heap of at least 1.5 times what it reserves
        assert int(reserved) * 1.5 < int(memory.rstrip("m")) << 20


def test_runner_passes_the_java_options_setting_to_the_job(monkeypatch: pytest.MonkeyPatch) -> None:
    from rtfin_cli.sentiment import runner

    seen: list[object] = []
    fake_job = type(
        "Job",
        (),
        {
            "Options": job.Options,
            "run": staticmethod(lambda o, on_progress: seen.append(o) or job.Progress()),
        },
    )
    monkeypatch.setattr(runner, "load_job", lambda: fake_job)
    monkeypatch.setattr(
        "rtfin_cli.kafka.clients.check_reachable",
        lambda k: type(
            "M", (), {"topics": {"rtfin.news.raw": 1, "rtfin.news.sentiment": 1, "rtfin.dlq": 1}}
        )(),
    )
    s = load_settings(environ={"RTFIN__SENTIMENT__JAVA_OPTIONS": "-XX:+UseSerialGC"}).settings
    runner.run_local(s, once=True)
    assert seen[0].java_options == "-XX:+UseSerialGC"  # type: ignore[attr-defined]
    runner.run_local(load_settings(environ={}).settings, once=True)
    assert seen[1].java_options == ""  # type: ignore[attr-defined]  # unset: Spark's defaults
