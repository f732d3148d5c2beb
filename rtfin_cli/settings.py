"""Typed settings: defaults < the profile's table in rtfin.toml < RTFIN__SECTION__KEY environment variables.

Secrets are ``SecretStr``: they never appear in ``repr``, logs or ``rtfin config show``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from rtfin_cli.locate import LOOPBACK_HOSTS, local_clickhouse_password, read_secret
from rtfin_cli.settings_sources import (
    DEFAULT_PROFILE,
    ENV_PREFIX,
    config_error,
    config_file,
    deep_merge,
    env_overrides,
)
from rtfin_cli.settings_sources import flatten as flatten

DEFAULT_CHECKPOINT_DIR = ".rtfin/checkpoints/sentiment"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class PolygonSettings(_Section):
    api_key: SecretStr | None = None
    rest_url: str = "https://api.massive.com"
    ws_url: str = "wss://delayed.massive.com/stocks"
    news_limit: int = Field(1000, ge=1, le=1000)
    poll_interval_s: float = Field(20.0, gt=0)
    max_retries: int = Field(8, ge=0)
    timeout_s: float = Field(30.0, gt=0)
    news_backfill_h: float = Field(168.0, ge=0)
    repair_concurrency: int = Field(8, ge=1, le=64)  # aggregates REST requests in flight while repairing
    repair_lookback_h: float = Field(96.0, gt=0)  # the longest hole one ticker's repair reaches back over


class TopicSettings(_Section):
    news_raw: str = "rtfin.news.raw"
    stocks_aggs: str = "rtfin.stocks.aggs"
    news_sentiment: str = "rtfin.news.sentiment"
    dlq: str = "rtfin.dlq"
    partitions: int = Field(3, ge=1)
    replication: int = Field(1, ge=1)
    retention_ms: int = Field(7 * 24 * 3600 * 1000, ge=-1)
    cleanup_policy: Literal["delete", "compact", "compact,delete"] = "delete"

    def by_table(self) -> dict[str, str]:
        """{raw table: topic} of the three data topics the warehouse ingests."""
        return {"news": self.news_raw, "stock_aggs": self.stocks_aggs, "news_sentiment": self.news_sentiment}


class KafkaSettings(_Section):
    bootstrap: str = "127.0.0.1:9092"
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] = "PLAIN"
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    client_id: str = "rtfin"
    topics: TopicSettings = TopicSettings()
    linger_ms: int = Field(20, ge=0)
    compression: Literal["none", "gzip", "snappy", "lz4", "zstd"] = "lz4"
    timeout_s: float = Field(10.0, gt=0)

    def client_config(self) -> dict[str, Any]:
        """librdkafka configuration shared by producers, consumers and admin clients."""
        conf: dict[str, Any] = {
            "bootstrap.servers": self.bootstrap,
            "security.protocol": self.security_protocol,
            "client.id": self.client_id,
        }
        if self.security_protocol.startswith("SASL"):
            conf["sasl.mechanism"] = self.sasl_mechanism
            conf["sasl.username"] = self.sasl_username or ""
            conf["sasl.password"] = self.sasl_password.get_secret_value() if self.sasl_password else ""
        return conf


class ClickPipesSettings(_Section):
    api_url: str = "https://api.clickhouse.cloud"
    organization_id: str | None = None
    service_id: str | None = None
    key_id: str | None = None
    key_secret: SecretStr | None = None
    source_type: Literal["kafka", "confluent", "msk", "redpanda", "warpstream", "azureeventhub"] = "kafka"
    replicas: int = Field(1, ge=1, le=10)  # the ClickPipes API allows 1..10 replicas per pipe
    group_prefix: str = "rtfin-clickpipes"  # each pipe's consumer group is <group_prefix>-<table>

    def group(self, table: str) -> str:
        """The consumer group of the pipe that fills ``table``."""
        return f"{self.group_prefix}-{table}"


class ClickHouseSettings(_Section):
    host: str = "127.0.0.1"
    port: int = Field(8123, ge=1, le=65535)
    user: str = "default"
    password: SecretStr | None = None
    secure: bool = False
    database: str = "rtfin"
    raw_database: str = "rtfin_raw"
    ingest: Literal["clickpipes", "kafka-engine", "loader"] = "loader"
    ttl_days: int = Field(0, ge=0)
    connect_timeout_s: float = Field(10.0, gt=0)
    loader_batch_rows: int = Field(20000, ge=1)
    loader_batch_s: float = Field(1.0, gt=0)
    loader_group: str = "rtfin-loader"  # consumer group of `rtfin transform load` (ingest = loader)
    kafka_engine_group: str = "rtfin-clickhouse"  # consumer group of the Kafka engine tables (kafka-engine)
    dbt_project_dir: str = ""
    dbt_threads: int = Field(1, ge=1)
    clickpipes: ClickPipesSettings = ClickPipesSettings()


class DatabricksSettings(_Section):
    host: str | None = None
    token: SecretStr | None = None
    cluster_id: str | None = None
    spark_version: str = "17.3.x-scala2.13"
    node_type_id: str = "i3.xlarge"
    num_workers: int = Field(1, ge=0)
    workspace_dir: str = "/Shared/rtfin"
    job_name: str = "rtfin-sentiment"
    secret_scope: str = "rtfin"
    # The streaming checkpoint on Databricks: durable storage (dbfs:/, /Volumes/..., an object-store URI),
    # so a new job cluster or a retry resumes the stream's state instead of starting over.
    checkpoint_dir: str = "dbfs:/rtfin/checkpoints/sentiment"
    libraries: list[str] = ["transformers>=4.44", "torch>=2.3", "confluent-kafka>=2.5"]


class SentimentSettings(_Section):
    model: str = "ProsusAI/finbert"
    runtime: Literal["torch", "onnx"] = "torch"  # onnx: the offline model as ONNX int8 under ONNX Runtime
    batch_size: int = Field(64, ge=1)
    max_length: int = Field(256, ge=8)
    max_offsets_per_trigger: int = Field(5000, ge=1)
    trigger_interval: str = "5 seconds"
    checkpoint_dir: str = DEFAULT_CHECKPOINT_DIR
    group: str = "rtfin-sentiment"
    starting_offsets: Literal["earliest", "latest"] = "earliest"
    fail_on_data_loss: bool = True
    spark_master: str = "local[*]"
    driver_memory: str = "1g"
    java_options: str | None = None  # local mode: JVM options of Spark's driver (None: Spark's defaults)
    shuffle_partitions: int = Field(2, ge=1)
    workers: int = Field(0, ge=0)  # Python workers scoring side by side in local mode (0: one per core)

    @field_validator("java_options")
    @classmethod
    def _java_options_not_blank(cls, value: str | None) -> str | None:
        if value is not None and not value.strip():
            raise ValueError("blank JVM options: leave the key unset for Spark's defaults")
        return value

    def local_checkpoint_dir(self, cwd: Path | None = None) -> Path | None:
        """The checkpoint directory on this machine (relative to ``cwd``), or None for a remote store
        (a URL, a Databricks volume or DBFS)."""
        ckpt = self.checkpoint_dir
        if "://" in ckpt or ckpt.startswith(("/Volumes", "/dbfs")):
            return None
        return ((cwd or Path.cwd()) / Path(ckpt).expanduser()).resolve()


class DashboardSettings(_Section):
    backend: Literal["superset", "preset"] = "superset"
    url: str = "http://127.0.0.1:8088"
    username: str = "admin"
    password: SecretStr | None = None
    preset_api_token: SecretStr | None = None
    preset_api_secret: SecretStr | None = None
    preset_workspace: str | None = None
    preset_api_url: str = "https://api.app.preset.io"
    refresh_s: int = Field(30, ge=5)
    assets_dir: str = "superset_assets"
    timeout_s: float = Field(60.0, gt=0)


class LagSettings(_Section):
    interval_s: float = Field(2.0, gt=0)  # refresh of the live view
    window_s: float = Field(30.0, gt=0)  # sliding window for rates, trend and STALLED
    max_lag: int = Field(1000, ge=0)  # LAGGING above this many messages per group x topic
    max_age_s: float = Field(300.0, gt=0)  # LAGGING when the oldest unconsumed message is older
    loader_group: str | None = None  # deprecated alias of clickhouse.loader_group


class LocalSettings(_Section):
    data_dir: str = ".rtfin"
    cache_dir: str = ".cache"
    kafka_port: int = Field(9092, ge=1, le=65535)
    kafka_controller_port: int = Field(9093, ge=1, le=65535)
    kafka_heap: str = "512m"
    clickhouse_port: int = Field(8123, ge=1, le=65535)
    market_port: int = Field(8765, ge=1, le=65535)
    clickhouse_max_body_mb: int = Field(256, ge=1)  # largest request body the local endpoint accepts
    clickhouse_loopback_network: bool = (
        False  # let url()/remote()/s3()... of the local endpoint reach loopback
    )
    market_speed: float = Field(60.0, gt=0)
    market_rate_limit: float = Field(10.0, ge=0)
    superset_port: int = Field(8088, ge=1, le=65535)

    def path(self, *parts: str) -> Path:
        """A path under the data directory, absolute (a relative data_dir is taken from the cwd)."""
        return resolve_path(self.data_dir, *parts)

    def clickhouse_password_file(self) -> Path:
        """Where the local ClickHouse endpoint keeps the password it generated on first start."""
        return self.path("clickhouse", "password")

    def superset_password_file(self) -> Path:
        """Where the local Superset keeps the admin password it generated on first start."""
        return self.path("superset", "admin_password")

    def dbt_dir(self) -> Path:
        """Where dbt's profiles, target and logs go (ignored by git)."""
        return self.path("dbt")


# The built-in `local` profile: everything on 127.0.0.1, no account, no key. A rtfin.toml [local]
# table overrides any of it.
BUILTIN_PROFILES: dict[str, dict[str, Any]] = {
    "local": {
        # The replay server is on loopback: poll news every 2 s and trigger the sentiment job every
        # second, so an article reaches the dashboard within seconds (hosted APIs keep the defaults).
        "polygon": {
            "rest_url": "http://127.0.0.1:8765",
            "ws_url": "ws://127.0.0.1:8765/stocks",
            "poll_interval_s": 2.0,
        },
        "sentiment": {"model": "rtfin-minilm-fin", "trigger_interval": "1 second"},
    }
}

SECTIONS = ("polygon", "kafka", "clickhouse", "databricks", "sentiment", "dashboard", "lag", "local")


class RtfinSettings(BaseSettings):
    """All of rtfin's configuration for one profile."""

    model_config = SettingsConfigDict(extra="forbid", env_prefix=ENV_PREFIX, env_nested_delimiter="__")

    polygon: PolygonSettings = PolygonSettings()
    kafka: KafkaSettings = KafkaSettings()
    clickhouse: ClickHouseSettings = ClickHouseSettings()
    databricks: DatabricksSettings = DatabricksSettings()
    sentiment: SentimentSettings = SentimentSettings()
    dashboard: DashboardSettings = DashboardSettings()
    lag: LagSettings = LagSettings()
    local: LocalSettings = LocalSettings()

    @model_validator(mode="after")
    def _deprecated_loader_group(self) -> RtfinSettings:
        """``lag.loader_group`` (the old key) names the loader's group unless clickhouse.loader_group is set."""
        if self.lag.loader_group and "loader_group" not in self.clickhouse.model_fields_set:
            self.clickhouse.loader_group = self.lag.loader_group
        return self

    def ingest_groups(self) -> dict[str, list[str]]:
        """{consumer group: topics it reads} of the configured ingest mode (clickhouse.ingest)."""
        ch, by_table = self.clickhouse, self.kafka.topics.by_table()
        if ch.ingest == "clickpipes":
            return {ch.clickpipes.group(table): [topic] for table, topic in by_table.items()}
        group = ch.loader_group if ch.ingest == "loader" else ch.kafka_engine_group
        return {group: list(by_table.values())}

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The file's values arrive as init kwargs; we merge env ourselves to know every key's source.
        return (init_settings,)


class LoadedSettings(BaseModel):
    """Resolved settings plus where each leaf key came from."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    settings: RtfinSettings
    profile: str
    config_path: Path | None
    sources: dict[str, str]
    generated: dict[str, str] = {}  # setting key → the file a generated secret was read from


def load_settings(
    config: str | Path | None = None,
    profile: str | None = None,
    environ: dict[str, str] | None = None,
) -> LoadedSettings:
    """Resolve settings for a profile from rtfin.toml (if any) and the environment."""
    env = dict(os.environ) if environ is None else environ
    profile = profile or env.get("RTFIN_PROFILE") or DEFAULT_PROFILE
    path, file_values = config_file(config, profile, env)
    env_values = env_overrides(env)
    builtin = BUILTIN_PROFILES.get(profile, {})
    merged = deep_merge(deep_merge(builtin, file_values), env_values)
    try:
        settings = RtfinSettings(**merged)
    except ValidationError as exc:
        raise config_error(exc, path, profile, env_values) from None
    sources = _sources(settings, profile, builtin, file_values, env_values)
    generated: dict[str, str] = {}
    for key, (value, secret_file) in generated_secrets(settings).items():
        section, name = key.split(".")
        setattr(getattr(settings, section), name, SecretStr(value))
        sources[key], generated[key] = "generated", str(secret_file)
    return LoadedSettings(
        settings=settings, profile=profile, config_path=path, sources=sources, generated=generated
    )


def _sources(
    settings: RtfinSettings,
    profile: str,
    builtin: dict[str, Any],
    file_values: dict[str, Any],
    env_values: dict[str, Any],
) -> dict[str, str]:
    """Where each leaf key's value came from: env, file, the built-in profile, or the default."""
    flat_file, flat_env, flat_builtin = flatten(file_values), flatten(env_values), flatten(builtin)
    sources = {}
    for key in flatten(settings.model_dump()):
        if key in flat_env:
            sources[key] = "env"
        elif key in flat_file:
            sources[key] = "file"
        else:
            sources[key] = f"profile:{profile}" if key in flat_builtin else "default"
    return sources


def masked_dump(settings: RtfinSettings) -> dict[str, Any]:
    """Settings as plain data with every secret masked."""

    def mask(value: Any) -> Any:
        if isinstance(value, SecretStr):
            return "********" if value.get_secret_value() else ""
        if isinstance(value, dict):
            return {k: mask(v) for k, v in value.items()}
        return value

    return mask(settings.model_dump())  # type: ignore[no-any-return]


def generated_secrets(settings: RtfinSettings) -> dict[str, tuple[str, Path]]:
    """Secrets the local stack generated that this profile uses, by setting key: (value, the file it is
    read from). Only where the setting is empty and its service is on this machine."""
    from urllib.parse import urlsplit

    ch, d, local = settings.clickhouse, settings.dashboard, settings.local
    out: dict[str, tuple[str, Path]] = {}
    clickhouse = local_clickhouse_password(secret(ch.password), ch.host, local.clickhouse_password_file())
    if clickhouse:
        out["clickhouse.password"] = (clickhouse, local.clickhouse_password_file())
    if not secret(d.password) and urlsplit(d.url).hostname in LOOPBACK_HOSTS:
        admin = read_secret(local.superset_password_file())
        if admin:
            out["dashboard.password"] = (admin, local.superset_password_file())
    return out


def secret(value: SecretStr | None) -> str:
    """The plain value of an optional secret ('' when unset)."""
    return value.get_secret_value() if value is not None else ""


def resolve_path(base: str, *parts: str) -> Path:
    """A path under a configured directory, absolute (relative paths are taken from the cwd)."""
    return Path(base).expanduser().resolve().joinpath(*parts)
