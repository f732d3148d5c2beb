"""Ingestion set-up and status for the configured mode (clickhouse.ingest)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rtfin_cli.errors import RtfinError
from rtfin_cli.settings import RtfinSettings
from rtfin_cli.warehouse.ddl import ident

if TYPE_CHECKING:
    from clickhouse_connect.driver.client import Client

    from rtfin_cli.report import Reporter


def check(settings: RtfinSettings) -> None:
    """Settings the mode cannot work with, as a ConfigError before any network call (ClickPipes: the
    Cloud API's credentials and the Kafka authentication its source type accepts)."""
    if settings.clickhouse.ingest == "clickpipes":
        from rtfin_cli.warehouse.clickpipes_contract import check_settings

        check_settings(settings)


def _client(settings: RtfinSettings) -> Client:
    from rtfin_cli.warehouse.client import get_client

    return get_client(settings)


def _column_types(settings: RtfinSettings, client: Client) -> dict[str, dict[str, str]]:
    from rtfin_cli.warehouse.client import errors

    with errors(settings.clickhouse, "reading raw table columns"):
        rows = client.query(
            "SELECT table, name, type FROM system.columns WHERE database = {db:String}",
            parameters={"db": settings.clickhouse.raw_database},
        ).result_rows
    out: dict[str, dict[str, str]] = {}
    for table, name, typ in rows:
        out.setdefault(str(table), {})[str(name)] = str(typ)
    return out


def setup(
    settings: RtfinSettings, client: Client | None, reporter: Reporter | None = None, dry_run: bool = False
) -> dict[str, Any]:
    """Make ingestion run for the mode: pipes (clickpipes), engine tables (kafka-engine), nothing (loader).

    ``dry_run`` changes nothing: ClickPipes lists the pipes and returns the requests it would send
    (``requests``, credentials masked); the Kafka engine returns its statements (secrets masked).
    """
    mode = settings.clickhouse.ingest
    if mode == "loader":
        return {
            "mode": mode,
            "actions": [
                f"rows arrive through `rtfin transform load` (consumer group {settings.clickhouse.loader_group})"
            ],
        }
    if mode == "kafka-engine":
        from rtfin_cli.warehouse import kafka_engine

        if dry_run:
            return {"mode": mode, "actions": [], "statements": kafka_engine.render(settings)}
        if client is None:
            client = _client(settings)
        stmts = kafka_engine.apply(settings, client)
        return {"mode": mode, "actions": [s.split(" AS SELECT")[0][:120] for s in stmts]}
    from rtfin_cli.warehouse import clickpipes

    api = clickpipes.ClickPipesApi(settings, reporter=reporter)
    try:
        bodies = clickpipes.desired(settings, _column_types(settings, client or _client(settings)))
        pipes = clickpipes.sync(api, bodies, dry_run=dry_run)
    finally:
        api.close()
    out: dict[str, Any] = {"mode": mode, "actions": [f"{p.name}: {p.action} ({p.state})" for p in pipes]}
    if dry_run:
        out["requests"] = [r for p in pipes for r in p.requests]
    return out


def pipes(settings: RtfinSettings, command: str, reporter: Reporter | None = None) -> list[dict[str, str]]:
    """Start or stop the ClickPipes (mode clickpipes only); an idle service is woken first (reported)."""
    from rtfin_cli.warehouse import clickpipes

    if settings.clickhouse.ingest != "clickpipes":
        raise RtfinError(
            f"clickhouse.ingest is '{settings.clickhouse.ingest}', not 'clickpipes'",
            "Start/stop applies to ClickPipes; the loader stops with SIGTERM.",
        )
    api = clickpipes.ClickPipesApi(settings, reporter=reporter)
    try:
        return [p.as_dict() for p in clickpipes.set_all(api, command)]
    finally:
        api.close()


def loader_lag(settings: RtfinSettings) -> dict[str, int] | str:
    """{topic: messages not yet loaded} for the loader's consumer group, or why it is unknown."""
    from confluent_kafka import TopicPartition

    from rtfin_cli.errors import ServiceUnavailable
    from rtfin_cli.kafka.clients import check_reachable, consumer
    from rtfin_cli.warehouse.batch import topic_tables

    try:
        meta = check_reachable(settings.kafka, timeout=5)
    except ServiceUnavailable as exc:
        return exc.message
    c = consumer(settings.kafka, settings.clickhouse.loader_group)
    try:
        out = {}
        for topic in topic_tables(settings):
            if topic not in meta.topics:
                out[topic] = -1
                continue
            parts = [TopicPartition(topic, p) for p in meta.topics[topic].partitions]
            committed = c.committed(parts, timeout=settings.kafka.timeout_s)
            lag = 0
            for tp in committed:
                low, high = c.get_watermark_offsets(tp, timeout=settings.kafka.timeout_s)
                lag += high - (tp.offset if tp.offset >= 0 else low)
            out[topic] = lag
        return out
    finally:
        c.close()


def status(settings: RtfinSettings, client: Client, reporter: Reporter | None = None) -> dict[str, Any]:
    """Migrations, raw row counts, and the mode's own state (loader lag, engine errors, pipe states)."""
    from rtfin_cli.warehouse import ddl
    from rtfin_cli.warehouse.client import errors, where

    mode = settings.clickhouse.ingest
    out: dict[str, Any] = {
        "clickhouse": where(settings.clickhouse),
        "mode": mode,
        **ddl.status(settings.clickhouse, client),
    }
    if mode == "loader":
        out["loader_lag"] = loader_lag(settings)
    elif mode == "kafka-engine":
        raw = ident(settings.clickhouse.raw_database)
        with errors(settings.clickhouse, "reading kafka_errors"):
            exists = client.command(f"EXISTS TABLE {raw}.kafka_errors")
            out["kafka_errors"] = (
                int(str(client.command(f"SELECT count() FROM {raw}.kafka_errors"))) if exists else 0
            )
    else:
        from rtfin_cli.warehouse import clickpipes

        api = clickpipes.ClickPipesApi(settings, reporter=reporter)
        try:
            out["pipes"] = [p.as_dict() for p in clickpipes.states(api)]
        finally:
            api.close()
    return out
