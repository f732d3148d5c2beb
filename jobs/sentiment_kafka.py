"""The sentiment job's Kafka side: client settings, resume offsets and the transactional writer.

Shipped beside sentiment_stream.py (uploaded with it to Databricks) and loaded by it; like the job, it
needs no rtfin install. Result timestamps are the article's published time (event time). The SASL
password comes from the options, RTFIN__KAFKA__SASL_PASSWORD or a Databricks secret scope, never argv.
"""

import json
import os
import sys
import threading
import time
from datetime import UTC, datetime
from typing import Any

STAGE = "sentiment"  # rtfin-stage of the job's dead letters
# The dead-letter headers: the names of rtfin_cli/kafka/deadletter.py, copied because the job runs without
# rtfin installed (tests/unit/test_sentiment_job.py holds the copies equal).
DLQ_HEADERS = ("rtfin-error", "rtfin-source", "rtfin-stage", "rtfin-offset")
# A batch's transaction that takes longer than this is stuck: send_offsets_to_transaction() can block
# forever when the group coordinator went away mid-transaction (confluentinc/librdkafka#5456). The job then
# exits (code 75); a restart fences the open transaction and resumes from the committed offsets.
TXN_DEADLINE_ENV = "RTFIN_SENTIMENT_TXN_DEADLINE_S"
TXN_DEADLINE_S = 300.0  # > send_offsets (60) + commit (120) + abort (60) when each takes its whole timeout


def _sasl_password(opts: Any) -> str:
    """The SASL password: the options' (local runs), the environment's, or the secret scope's."""
    if opts.sasl_password:
        return str(opts.sasl_password)
    if os.environ.get("RTFIN__KAFKA__SASL_PASSWORD"):
        return os.environ["RTFIN__KAFKA__SASL_PASSWORD"]
    if opts.secret_scope:  # Databricks existing cluster: read the scope at run time
        from pyspark.dbutils import DBUtils  # type: ignore[import-not-found]
        from pyspark.sql import SparkSession

        dbutils = DBUtils(SparkSession.builder.getOrCreate())
        return str(dbutils.secrets.get(opts.secret_scope, "kafka-sasl-password"))
    return ""


def _librdkafka_conf(opts: Any) -> dict[str, Any]:
    """Connection settings of the job's own Kafka clients (librdkafka), SASL included when configured."""
    conf: dict[str, Any] = {"bootstrap.servers": opts.bootstrap, "security.protocol": opts.security_protocol}
    if opts.security_protocol.startswith("SASL"):
        conf.update({"sasl.mechanism": opts.sasl_mechanism, "sasl.username": opts.sasl_username})
        conf["sasl.password"] = _sasl_password(opts)
    return conf


def login_module(mechanism: str, shaded: bool) -> str:
    """The JAAS login module class for a SASL mechanism. Databricks runtimes relocate the Kafka client
    under ``kafkashaded.``: there the unshaded class names do not exist and the login fails."""
    name = (
        "org.apache.kafka.common.security.plain.PlainLoginModule"
        if mechanism == "PLAIN"
        else "org.apache.kafka.common.security.scram.ScramLoginModule"
    )
    return "kafkashaded." + name if shaded else name


def source_options(opts: Any, starting_offsets: str) -> dict[str, str]:
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
        module = login_module(opts.sasl_mechanism, bool(getattr(opts, "shaded_kafka", False)))
        user, password = json.dumps(opts.sasl_username), json.dumps(_sasl_password(opts))
        out["kafka.sasl.mechanism"] = opts.sasl_mechanism
        out["kafka.sasl.jaas.config"] = f"{module} required username={user} password={password};"
    return out


class TransactionalSink:
    """Writes a batch's results + DLQ records and commits the group offsets in one Kafka transaction."""

    def __init__(self, opts: Any) -> None:
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


def first_offsets(consumer: Any, topic: str, partitions: int) -> str:
    """endingOffsets (Spark's Kafka source) one record past each partition's first record (empty partitions:
    none): a batch read of the topic's first records, which warms the source's code at start-up."""
    from confluent_kafka import TopicPartition

    ends = {}
    for p in range(partitions):
        low, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=30)
        ends[str(p)] = min(low + 1, high)
    return json.dumps({topic: ends})


def starting_offsets(opts: Any, committed: dict[int, int], partitions: int) -> str:
    """Resume from the group's offsets when there is no checkpoint yet (else opts.starting_offsets)."""
    if not committed:
        return str(opts.starting_offsets)
    default = -2 if opts.starting_offsets == "earliest" else -1
    return json.dumps({opts.topic_in: {str(p): committed.get(p, default) for p in range(partitions)}})
