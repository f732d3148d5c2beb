"""Ingest mode ``kafka-engine`` (self-hosted ClickHouse): Kafka table engine + materialized views.

Per topic: a Kafka engine table ``<raw>.kafka_<table>_queue`` reading JSONEachRow with
``kafka_handle_error_mode='stream'``; a materialized view moving valid rows into the raw table;
a second one moving unparsable or invalid rows (with the error) into ``<raw>.kafka_errors``.
All statements are ``IF NOT EXISTS``; ``replace=True`` drops and recreates the Kafka tables and
views (after a change of brokers, topics or credentials). The raw tables' ReplacingMergeTree
makes the engine's at-least-once delivery harmless.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rtfin_cli.settings import RtfinSettings, secret
from rtfin_cli.warehouse.ddl import ident

if TYPE_CHECKING:
    from clickhouse_connect.driver.client import Client

MASK = "******"


def _time(col: str) -> str:
    """A time that is ISO-8601 text or epoch ms (read as a string), or NULL."""
    col = f"q.{col}"  # qualified: the output alias has the same name
    return (
        f"if(match({col}, '^[0-9]+$'), fromUnixTimestamp64Milli(toInt64OrZero({col}), 'UTC'), "
        f"parseDateTime64BestEffortOrNull({col}, 3, 'UTC'))"
    )


_PUBLISHER = "Tuple(name String, homepage_url String, logo_url String, favicon_url String)"
_INSIGHTS = "Array(Tuple(ticker String, sentiment String, sentiment_reasoning String))"
# table -> (queue columns, SELECT expressions into the raw table, validity condition)
SPECS: dict[str, tuple[list[str], list[str], str]] = {
    "news": (
        [
            "id String",
            "published_utc String",
            "title String",
            "description String",
            "article_url String",
            "author String",
            f"publisher {_PUBLISHER}",
            "tickers Array(String)",
            "keywords Array(String)",
            "image_url String",
            "amp_url String",
            f"insights {_INSIGHTS}",
            "ingested_at String",
        ],
        [
            "id",
            f"assumeNotNull({_time('published_utc')}) AS published_utc",
            "title",
            "description",
            "article_url",
            "author",
            "publisher",
            "tickers",
            "keywords",
            "image_url",
            "amp_url",
            "insights",
            f"ifNull({_time('ingested_at')}, now64(3)) AS ingested_at",
        ],
        f"q.id != '' AND isNotNull({_time('published_utc')})",
    ),
    "stock_aggs": (
        [
            "ev String",
            "sym String",
            "s Int64",
            "e Int64",
            "o Float64",
            "h Float64",
            "l Float64",
            "c Float64",
            "v Float64",
            "vw Float64",
            "av Float64",
            "a Float64",
            "z Float64",
            "otc Bool",
            "ingested_at String",
        ],
        [
            "ev",
            "sym",
            "s",
            "e",
            "o",
            "h",
            "l",
            "c",
            "v",
            "vw",
            "av",
            "a",
            "z",
            "otc",
            f"ifNull({_time('ingested_at')}, now64(3)) AS ingested_at",
        ],
        "q.sym != '' AND q.ev IN ('AM', 'A') AND q.s > 0",
    ),
    "news_sentiment": (
        [
            "id String",
            "published_utc String",
            "title String",
            "tickers Array(String)",
            "label String",
            "score Float64",
            "sentiment Float64",
            "model String",
            "scored_at String",
        ],
        [
            "id",
            f"assumeNotNull({_time('published_utc')}) AS published_utc",
            "title",
            "tickers",
            "label",
            "score",
            "sentiment",
            "model",
            f"assumeNotNull({_time('scored_at')}) AS scored_at",
        ],
        f"q.id != '' AND q.label IN ('positive', 'negative', 'neutral') AND q.score BETWEEN 0 AND 1 "
        f"AND q.sentiment BETWEEN -1 AND 1 AND isNotNull({_time('published_utc')}) "
        f"AND isNotNull({_time('scored_at')})",
    ),
}


def select_valid(table: str, source: str) -> str:
    """The SELECT moving valid rows of a Kafka queue table into the raw table."""
    _, exprs, valid = SPECS[table]
    return (
        f"SELECT {', '.join(exprs)}, q._topic AS _topic, q._partition AS _partition, q._offset AS _offset "
        f"FROM {source} AS q WHERE length(q._error) = 0 AND {valid}"
    )


def select_errors(table: str, source: str) -> str:
    """The SELECT moving unparsable or invalid rows (with the reason) into kafka_errors."""
    cols, _, valid = SPECS[table]
    fields = ", ".join(f"q.{c.split()[0]}" for c in cols)
    return (
        "SELECT q._topic AS topic, q._partition AS partition, q._offset AS offset, "
        f"if(length(q._error) > 0, q._error, 'invalid record for {table}') AS error, "
        f"if(length(q._error) > 0, q._raw_message, "
        f"toJSONString(CAST(tuple({fields}), 'Tuple({', '.join(cols)})'))) AS raw_message "
        f"FROM {source} AS q WHERE length(q._error) > 0 OR NOT ({valid})"
    )


def _quote(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def render(settings: RtfinSettings, mask_secrets: bool = True, replace: bool = False) -> list[str]:
    """The statements that set up Kafka-engine ingestion (secrets masked unless asked otherwise)."""
    raw = ident(settings.clickhouse.raw_database)
    ttl = (
        f" TTL toDateTime(at) + INTERVAL {settings.clickhouse.ttl_days} DAY"
        if settings.clickhouse.ttl_days
        else ""
    )
    out = [
        f"CREATE TABLE IF NOT EXISTS {raw}.kafka_errors (topic LowCardinality(String), partition Int64, "
        "offset UInt64, error String, raw_message String, at DateTime64(3, 'UTC') DEFAULT now64(3)) "
        f"ENGINE = MergeTree ORDER BY (topic, at){ttl}"
    ]
    for table, topic in settings.kafka.topics.by_table().items():
        out += _table_statements(settings, raw, table, topic, mask_secrets, replace)
    return out


def _table_statements(
    settings: RtfinSettings, raw: str, table: str, topic: str, mask_secrets: bool, replace: bool
) -> list[str]:
    """One topic's Kafka engine table and its two materialized views (dropped first with ``replace``)."""
    cols = SPECS[table][0]
    queue, mv, err_mv = (
        f"{raw}.kafka_{table}_queue",
        f"{raw}.kafka_{table}_mv",
        f"{raw}.kafka_{table}_errors_mv",
    )
    out = [f"DROP VIEW IF EXISTS {mv}", f"DROP VIEW IF EXISTS {err_mv}", f"DROP TABLE IF EXISTS {queue}"]
    out = out if replace else []
    settings_sql = ", ".join(
        f"{key} = {_quote(v)}" for key, v in _engine_options(settings, topic, mask_secrets).items()
    )
    out.append(
        f"CREATE TABLE IF NOT EXISTS {queue} ({', '.join(cols)}) ENGINE = Kafka "
        f"SETTINGS {settings_sql}, input_format_skip_unknown_fields = 1, "
        "input_format_json_read_numbers_as_strings = 1"
    )
    out.append(
        f"CREATE MATERIALIZED VIEW IF NOT EXISTS {mv} TO {raw}.{table} AS {select_valid(table, queue)}"
    )
    out.append(
        f"CREATE MATERIALIZED VIEW IF NOT EXISTS {err_mv} TO {raw}.kafka_errors AS "
        + select_errors(table, queue)
    )
    return out


def _engine_options(settings: RtfinSettings, topic: str, mask_secrets: bool) -> dict[str, str]:
    """The Kafka engine's SETTINGS for one topic: brokers, the consumer group, format, security."""
    k = settings.kafka
    opts = {
        "kafka_broker_list": k.bootstrap,
        "kafka_topic_list": topic,
        "kafka_group_name": settings.clickhouse.kafka_engine_group,
        "kafka_client_id": f"{k.client_id}-clickhouse",
        "kafka_format": "JSONEachRow",
        "kafka_handle_error_mode": "stream",
        "kafka_num_consumers": "1",
        "kafka_thread_per_consumer": "0",
        "kafka_security_protocol": k.security_protocol.lower(),
    }
    if k.security_protocol.startswith("SASL"):
        opts["kafka_sasl_mechanism"] = k.sasl_mechanism
        opts["kafka_sasl_username"] = k.sasl_username or ""
        opts["kafka_sasl_password"] = MASK if mask_secrets else secret(k.sasl_password)
    return opts


def apply(settings: RtfinSettings, client: Client, replace: bool = False) -> list[str]:
    """Create the Kafka tables and views on the server; returns the (masked) statements run."""
    from rtfin_cli.warehouse.client import errors

    with errors(settings.clickhouse, "setting up Kafka-engine ingestion"):
        for stmt in render(settings, mask_secrets=False, replace=replace):
            client.command(stmt)
    return render(settings, replace=replace)
