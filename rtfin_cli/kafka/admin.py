"""Topic administration: create the DESIGN.md topics idempotently, list and describe them."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from rtfin_cli.errors import RtfinError, ServiceUnavailable
from rtfin_cli.kafka.clients import admin, check_reachable, consumer
from rtfin_cli.settings import KafkaSettings


@dataclass
class TopicInfo:
    name: str
    partitions: int
    replication: int
    end_offsets: list[int]
    messages: int
    config: dict[str, str]

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def pipeline_topics(kafka: KafkaSettings) -> list[str]:
    t = kafka.topics
    return [t.news_raw, t.stocks_aggs, t.news_sentiment, t.dlq]


def create_topics(kafka: KafkaSettings) -> dict[str, str]:
    """Create the pipeline topics that are missing; returns {topic: 'created' | 'exists'}."""
    from confluent_kafka import KafkaError, KafkaException
    from confluent_kafka.admin import NewTopic  # type: ignore[attr-defined]  # re-exported without __all__

    meta = check_reachable(kafka)
    t = kafka.topics
    config = {"retention.ms": str(t.retention_ms), "cleanup.policy": t.cleanup_policy}
    result: dict[str, str] = {}
    new = []
    for name in pipeline_topics(kafka):
        if name in meta.topics:
            result[name] = "exists"
        else:
            new.append(
                NewTopic(name, num_partitions=t.partitions, replication_factor=t.replication, config=config)
            )
    if new:
        client = admin(kafka)  # keep a reference: futures die with their client
        futures = client.create_topics(new, request_timeout=kafka.timeout_s)
        for name, fut in futures.items():
            try:
                fut.result()
                result[name] = "created"
            except KafkaException as exc:
                err = exc.args[0]
                if err.code() == KafkaError.TOPIC_ALREADY_EXISTS:
                    result[name] = "exists"
                else:
                    raise RtfinError(f"cannot create topic {name}: {err.str()}") from None
    return {name: result[name] for name in pipeline_topics(kafka)}


def end_offsets(kafka: KafkaSettings, topic: str, partitions: int) -> tuple[list[int], list[int]]:
    """(low, high) watermarks of every partition of a topic."""
    from confluent_kafka import TopicPartition

    c = consumer(kafka, group="rtfin-admin-probe")
    try:
        lows, highs = [], []
        for p in range(partitions):
            lo, hi = c.get_watermark_offsets(TopicPartition(topic, p), timeout=kafka.timeout_s)
            lows.append(lo)
            highs.append(hi)
        return lows, highs
    finally:
        c.close()


def describe_topics(
    kafka: KafkaSettings, names: list[str] | None = None, internal: bool = False
) -> list[TopicInfo]:
    """Partitions, replication, end offsets and config of topics (default: every non-internal topic)."""
    meta = check_reachable(kafka)
    if names:
        missing = [n for n in names if n not in meta.topics]
        if missing:
            raise RtfinError(
                f"topic not found: {', '.join(missing)}", "Create it with `rtfin topics create`."
            )
    else:
        names = sorted(n for n in meta.topics if internal or not n.startswith("__"))
    configs = _topic_configs(kafka, names)
    out = []
    for name in names:
        tmeta = meta.topics[name]
        parts = len(tmeta.partitions)
        repl = len(next(iter(tmeta.partitions.values())).replicas) if parts else 0
        lows, highs = end_offsets(kafka, name, parts)
        out.append(
            TopicInfo(
                name=name,
                partitions=parts,
                replication=repl,
                end_offsets=highs,
                messages=sum(h - lo for lo, h in zip(lows, highs, strict=True)),
                config=configs.get(name, {}),
            )
        )
    return out


def retention_ms(kafka: KafkaSettings, names: list[str]) -> dict[str, int]:
    """Each topic's time retention as the broker applies it (-1: forever); topics that do not exist are left out."""
    meta = check_reachable(kafka)
    found = [n for n in names if n in meta.topics]
    return {n: int(c.get("retention.ms", "-1")) for n, c in _topic_configs(kafka, found).items()}


def _topic_configs(kafka: KafkaSettings, names: list[str]) -> dict[str, dict[str, str]]:
    """The settings of each topic that `rtfin topics` shows (retention, cleanup, ISR, compression)."""
    from confluent_kafka.admin import ConfigResource, ResourceType  # type: ignore[attr-defined]

    configs: dict[str, dict[str, str]] = {}
    if not names:
        return configs
    client = admin(kafka)  # held until every future is done: a freed client takes its requests with it
    futures = client.describe_configs([ConfigResource(ResourceType.TOPIC, n) for n in names])
    for res, fut in futures.items():
        try:
            entries = fut.result(timeout=kafka.timeout_s)
        except Exception as exc:  # noqa: BLE001
            raise ServiceUnavailable(f"cannot describe topic {res.name}: {exc}") from None
        configs[res.name] = {
            k: v.value
            for k, v in entries.items()
            if k in ("retention.ms", "cleanup.policy", "min.insync.replicas", "compression.type")
        }
    return configs
