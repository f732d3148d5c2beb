"""What rtfin sends to the ClickPipes API, held to the API's contract before any request is made.

The contract follows the official Terraform provider (ClickHouse/terraform-provider-clickhouse,
``pkg/internal/api/clickpipe_models.go`` and ``clickpipe.go``): a create body is ``ClickPipe`` (no
``description``: the API removed it and rejects it, provider PR #331), an update body ``ClickPipeUpdate``
(name, source, destination.columns, fieldMappings, settings), replicas are changed through their own
``/scaling`` endpoint. Each Kafka source type takes only some authentication mechanisms and none is
unauthenticated (ClickHouse docs, ClickPipes Kafka best practices; the provider's examples): a setting
that cannot work is a ``ConfigError`` naming it, raised before the network is touched.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from rtfin_cli.errors import ConfigError, RtfinError
from rtfin_cli.settings import RtfinSettings, secret
from rtfin_cli.warehouse.records import KAFKA_COLUMNS, SCHEMAS

# ClickPipes' Kafka virtual columns mapped into the source-position columns (same names).
VIRTUAL = {"_topic": "_topic", "_partition": "_partition", "_offset": "_offset"}
# SASL mechanisms each source type accepts that rtfin's Kafka settings can express (IAM and mutual TLS
# are ClickPipes options rtfin's own clients do not use).
AUTH_BY_TYPE: dict[str, tuple[str, ...]] = {
    "kafka": ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"),
    "redpanda": ("SCRAM-SHA-256", "SCRAM-SHA-512"),
    "confluent": ("PLAIN",),
    "warpstream": ("PLAIN",),
    "msk": ("SCRAM-SHA-512",),
    "azureeventhub": ("PLAIN",),
}
# Azure Event Hubs' Kafka endpoint: SASL PLAIN with this user name and the connection string as password.
EVENT_HUBS_USER = "$ConnectionString"
MASK = "***"


def pipe_name(table: str) -> str:
    return f"rtfin-{table}"


def check_settings(settings: RtfinSettings) -> None:
    """Every setting the pipes need, and only combinations the API accepts; raises ConfigError."""
    cp, k = settings.clickhouse.clickpipes, settings.kafka
    missing = [key for key in ("organization_id", "service_id", "key_id") if not getattr(cp, key)]
    if not secret(cp.key_secret):
        missing.append("key_secret")
    if missing:
        raise ConfigError(
            f"clickhouse.ingest = 'clickpipes' needs clickhouse.clickpipes.{', '.join(missing)}",
            "Set them in rtfin.toml or as RTFIN__CLICKHOUSE__CLICKPIPES__<KEY> (the secret via env).",
        )
    if not k.security_protocol.startswith("SASL"):
        raise ConfigError(
            f"kafka.security_protocol = '{k.security_protocol}' cannot be used with ClickPipes, which has "
            "no unauthenticated Kafka mode (allowed: SASL_SSL, SASL_PLAINTEXT)",
            "Point kafka.* at the broker's SASL listener with kafka.sasl_username / sasl_password.",
        )
    allowed = AUTH_BY_TYPE[cp.source_type]
    if k.sasl_mechanism not in allowed:
        raise ConfigError(
            f"kafka.sasl_mechanism = '{k.sasl_mechanism}' is not supported by ClickPipes for "
            f"clickhouse.clickpipes.source_type = '{cp.source_type}' (allowed: {', '.join(allowed)})",
        )
    if cp.source_type == "azureeventhub" and k.sasl_username != EVENT_HUBS_USER:
        raise ConfigError(
            "clickhouse.clickpipes.source_type = 'azureeventhub' authenticates with a connection string: "
            f"kafka.sasl_username must be '{EVENT_HUBS_USER}' and kafka.sasl_password the connection string",
        )
    if not k.sasl_username or not secret(k.sasl_password):
        raise ConfigError(
            "ClickPipes needs kafka.sasl_username and kafka.sasl_password (the Kafka credentials it reads with)",
            "Set the user in rtfin.toml and the password as RTFIN__KAFKA__SASL_PASSWORD.",
        )


def credentials(settings: RtfinSettings) -> dict[str, str]:
    """``source.kafka.credentials``: a connection string for Event Hubs, user/password otherwise."""
    k = settings.kafka
    if settings.clickhouse.clickpipes.source_type == "azureeventhub":
        return {"connectionString": secret(k.sasl_password)}
    return {"username": k.sasl_username or "", "password": secret(k.sasl_password)}


def desired(settings: RtfinSettings, column_types: dict[str, dict[str, str]]) -> list[dict[str, Any]]:
    """The create bodies of the three pipes; ``column_types`` = {table: {column: ClickHouse type}}."""
    k, ch = settings.kafka, settings.clickhouse
    out = []
    for table, topic in k.topics.by_table().items():
        types = column_types.get(table)
        if not types:
            raise RtfinError(
                f"raw table {ch.raw_database}.{table} does not exist, so its pipe has no columns",
                "Create the raw tables first: `rtfin transform ddl`.",
            )
        fields = [c for c, _ in SCHEMAS[table]]
        mappings = [{"sourceField": c, "destinationField": c} for c in fields]
        mappings += [{"sourceField": VIRTUAL[c], "destinationField": c} for c in KAFKA_COLUMNS]
        source = {
            "type": ch.clickpipes.source_type,
            "format": "JSONEachRow",
            "brokers": k.bootstrap,
            "topics": topic,
            "consumerGroup": ch.clickpipes.group(table),
            "offset": {"strategy": "from_beginning"},
            "authentication": k.sasl_mechanism,
            "credentials": credentials(settings),
        }
        out.append(
            {
                "name": pipe_name(table),
                "scaling": {"replicas": ch.clickpipes.replicas},
                "source": {"kafka": source},
                "destination": {
                    "database": ch.raw_database,
                    "table": table,
                    "managedTable": False,
                    "columns": [{"name": c, "type": types[c]} for c in fields + KAFKA_COLUMNS],
                },
                "fieldMappings": mappings,
            }
        )
    return out


# Kafka source fields the API returns and rtfin compares; a change of any other one needs a new pipe.
_PATCHABLE_KAFKA = ("brokers", "topics", "authentication")
_FIXED_KAFKA = ("type", "format", "consumerGroup")


def update_body(have: dict[str, Any], want: dict[str, Any], send_credentials: bool) -> dict[str, Any]:
    """The ``ClickPipeUpdate`` body that turns ``have`` (as the API returns it) into ``want``; {} if equal."""
    body: dict[str, Any] = {}
    if have.get("fieldMappings") != want["fieldMappings"]:
        body["fieldMappings"] = want["fieldMappings"]
    if (have.get("destination") or {}).get("columns") != want["destination"]["columns"]:
        body["destination"] = {"columns": want["destination"]["columns"]}
    have_kafka = (have.get("source") or {}).get("kafka") or {}
    want_kafka = want["source"]["kafka"]
    kafka = {key: want_kafka[key] for key in _PATCHABLE_KAFKA if have_kafka.get(key) != want_kafka[key]}
    if send_credentials or "authentication" in kafka:
        kafka["credentials"] = want_kafka["credentials"]
    if kafka:
        body["source"] = {"kafka": kafka}
    return body


def fixed_changes(have: dict[str, Any], want: dict[str, Any]) -> list[str]:
    """Kafka source fields that differ but cannot be updated in place (the pipe must be recreated)."""
    have_kafka = (have.get("source") or {}).get("kafka") or {}
    want_kafka = want["source"]["kafka"]
    return [k for k in _FIXED_KAFKA if k in have_kafka and have_kafka[k] != want_kafka[k]]


def masked(body: dict[str, Any]) -> dict[str, Any]:
    """A copy of a request body with every credential value replaced by ***."""
    out = json.loads(json.dumps(body))
    kafka = (out.get("source") or {}).get("kafka") or {}
    if "credentials" in kafka:
        kafka["credentials"] = {key: MASK for key in kafka["credentials"]}
    return out  # type: ignore[no-any-return]


class CredentialMarks:
    """Which Kafka credentials each pipe was last given, as salted slow hashes in a local file.

    The API never returns credentials, so without a record every run would have to resend them (a PATCH
    each time); with it, they are sent only when they change. The file holds no secret: a PBKDF2 hash
    salted with the pipe id.
    """

    ROUNDS = 200_000

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self.marks: dict[str, str] = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            self.marks = {}

    def _mark(self, pipe_id: str, creds: dict[str, str]) -> str:
        data = json.dumps(creds, sort_keys=True).encode()
        return hashlib.pbkdf2_hmac("sha256", data, pipe_id.encode(), self.ROUNDS).hex()

    def current(self, pipe_id: str, creds: dict[str, str]) -> bool:
        return self.marks.get(pipe_id) == self._mark(pipe_id, creds)

    def record(self, pipe_id: str, creds: dict[str, str]) -> None:
        self.marks[pipe_id] = self._mark(pipe_id, creds)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.marks, indent=1, sort_keys=True), encoding="utf-8")
        tmp.replace(self.path)
