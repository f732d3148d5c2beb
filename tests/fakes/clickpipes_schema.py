"""The ClickPipes API request schema (Kafka sources) as the strict fake checks it.

Derived from the official Terraform provider, ClickHouse/terraform-provider-clickhouse:
- ``pkg/internal/api/clickpipe_models.go``: ``ClickPipe`` (POST body), ``ClickPipeUpdate`` (PATCH body:
  name, source, destination.columns, fieldMappings, settings — no ``description``, no ``scaling``),
  ``ClickPipeKafkaSource``, ``ClickPipeKafkaSourceCredentials``, ``ClickPipeDestination``.
- ``pkg/internal/api/clickpipe.go``: the enums (source types, formats, authentication methods, offset
  strategies, state commands).
- ``docs/resources/clickpipe.md``: required kafka fields (brokers, format, topics), replicas 1..10,
  ``connection_string`` for ``azureeventhub`` with PLAIN.
- The per-source-type authentication matrix: ClickHouse docs ``clickpipes/kafka/04_best_practices.md``
  (MSK: SCRAM-SHA-512 or IAM) and the provider's examples (``kafka_redpanda_scram``: SCRAM;
  ``kafka_confluent``: PLAIN; ``kafka_azure_eventhub``: a connection string, no user/password).

A check returns the first problem as ``"<path>: <problem>"`` or None; the fake answers it with a 400.
"""

from __future__ import annotations

from typing import Any

SOURCE_TYPES = ("kafka", "redpanda", "confluent", "msk", "warpstream", "azureeventhub", "gcmk")
FORMATS = ("JSONEachRow", "Avro", "AvroConfluent", "Protobuf")
AUTH_METHODS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "IAM_ROLE", "IAM_USER", "MUTUAL_TLS")
OFFSET_STRATEGIES = ("from_beginning", "from_latest", "from_timestamp")
STATE_COMMANDS = ("start", "stop", "resync")
SCRAM = ("SCRAM-SHA-256", "SCRAM-SHA-512")
# Which authentication each Kafka source type accepts (there is no unauthenticated mode).
AUTH_BY_TYPE: dict[str, tuple[str, ...]] = {
    "kafka": ("PLAIN", *SCRAM, "MUTUAL_TLS"),
    "redpanda": SCRAM,
    "confluent": ("PLAIN",),
    "warpstream": ("PLAIN",),
    "msk": ("SCRAM-SHA-512", "IAM_ROLE", "IAM_USER"),
    "azureeventhub": ("PLAIN",),
    "gcmk": ("PLAIN",),
}
MAX_REPLICAS = 10

CREDENTIALS = {"username", "password", "accessKeyId", "secretKey", "connectionString", "certificate",
               "privateKey"}  # fmt: skip
KAFKA = {"type", "format", "brokers", "topics", "consumerGroup", "offset", "schemaRegistry",
         "authentication", "credentials", "iamRole", "caCertificate", "reversePrivateEndpointIds"}  # fmt: skip
SOURCE = {"kafka", "objectStorage", "kinesis", "postgres", "bigquery", "validateSamples"}
DESTINATION = {"database", "table", "managedTable", "tableDefinition", "columns", "roles"}
PIPE = {"name", "scaling", "source", "destination", "fieldMappings", "settings"}
PATCH = {"name", "source", "destination", "fieldMappings", "settings"}
PATCH_DESTINATION = {"columns"}
SCALING = {"replicas", "replicaCpuMillicores", "replicaMemoryGb"}


def unknown_field(obj: Any, allowed: set[str], path: str) -> str | None:
    if not isinstance(obj, dict):
        return f"{path}: must be an object"
    extra = sorted(set(obj) - allowed)
    return f"{path}.{extra[0]}: unknown field" if extra else None


def _str(obj: dict[str, Any], key: str, path: str, required: bool = True) -> str | None:
    if key not in obj:
        return f"{path}.{key}: required" if required else None
    if not isinstance(obj[key], str) or not obj[key]:
        return f"{path}.{key}: must be a non-empty string"
    return None


def enum_field(obj: dict[str, Any], key: str, allowed: tuple[str, ...], path: str) -> str | None:
    if key in obj and obj[key] not in allowed:
        return f"{path}.{key}: must be one of {', '.join(allowed)}"
    return None


def _columns(columns: Any, path: str) -> str | None:
    if not isinstance(columns, list) or not columns:
        return f"{path}: must be a non-empty list"
    for i, col in enumerate(columns):
        p = f"{path}[{i}]"
        problem = unknown_field(col, {"name", "type"}, p) or _str(col, "name", p) or _str(col, "type", p)
        if problem:
            return problem
    return None


def _mappings(mappings: Any, path: str) -> str | None:
    if not isinstance(mappings, list):
        return f"{path}: must be a list"
    for i, m in enumerate(mappings):
        p = f"{path}[{i}]"
        problem = (
            unknown_field(m, {"sourceField", "destinationField"}, p)
            or _str(m, "sourceField", p)
            or _str(m, "destinationField", p)
        )
        if problem:
            return problem
    return None


def _credentials(kafka: dict[str, Any], kind: str, auth: str, path: str) -> str | None:
    creds = kafka.get("credentials")
    if creds is None:
        return None if auth == "IAM_ROLE" else f"{path}.credentials: required for {auth}"
    problem = unknown_field(creds, CREDENTIALS, f"{path}.credentials")
    if problem:
        return problem
    given = {k for k, v in creds.items() if v}
    if kind == "azureeventhub":
        need = {"connectionString"}
    elif auth == "IAM_USER":
        need = {"accessKeyId", "secretKey"}
    elif auth == "MUTUAL_TLS":
        need = {"certificate", "privateKey"}
    else:
        need = {"username", "password"}
    if given != need:
        return f"{path}.credentials: {kind} with {auth} takes exactly {', '.join(sorted(need))}"
    return None


def kafka_source(kafka: Any, path: str, stored: dict[str, Any] | None = None) -> str | None:
    """A ``source.kafka`` object; in a PATCH (``stored`` = the pipe's kafka source) nothing is required,
    and what is sent is checked merged over what is stored."""
    patch = stored is not None
    problem = unknown_field(kafka, KAFKA, path)
    if problem:
        return problem
    for key in ("format", "brokers", "topics"):
        problem = _str(kafka, key, path, required=not patch)
        if problem:
            return problem
    problem = (
        enum_field(kafka, "type", SOURCE_TYPES, path)
        or enum_field(kafka, "format", FORMATS, path)
        or enum_field(kafka, "authentication", AUTH_METHODS, path)
    )
    if problem:
        return problem
    offset = kafka.get("offset")
    if offset is not None:
        problem = unknown_field(offset, {"strategy", "timestamp"}, f"{path}.offset") or enum_field(
            offset, "strategy", OFFSET_STRATEGIES, f"{path}.offset"
        )
        if problem:
            return problem
        if (offset.get("strategy") == "from_timestamp") != ("timestamp" in offset):
            return f"{path}.offset.timestamp: required with from_timestamp and only with it"
    if patch and "credentials" not in kafka and "authentication" not in kafka:
        return None
    merged = {**(stored or {}), **kafka}
    kind, auth = merged.get("type", "kafka"), merged.get("authentication", "PLAIN")
    if auth not in AUTH_BY_TYPE[kind]:
        return f"{path}.authentication: {kind} supports {', '.join(AUTH_BY_TYPE[kind])}, not {auth}"
    return _credentials(kafka, kind, auth, path)


def create_body(body: Any) -> str | None:
    """A POST ``/clickpipes`` body (a Kafka pipe)."""
    problem = unknown_field(body, PIPE, "body") or _str(body, "name", "body")
    if problem:
        return problem
    scaling = body.get("scaling")
    if scaling is not None:
        problem = unknown_field(scaling, SCALING, "body.scaling")
        if problem:
            return problem
        replicas = scaling.get("replicas", 1)
        if not isinstance(replicas, int) or not 1 <= replicas <= MAX_REPLICAS:
            return f"body.scaling.replicas: must be an integer from 1 to {MAX_REPLICAS}"
    source = body.get("source")
    problem = unknown_field(source, SOURCE, "body.source") if source is not None else "body.source: required"
    if problem:
        return problem
    if "kafka" not in source:
        return "body.source.kafka: required (the only source this fake models)"
    problem = kafka_source(source["kafka"], "body.source.kafka")
    if problem:
        return problem
    dest = body.get("destination")
    if dest is None:
        return "body.destination: required"
    problem = (
        unknown_field(dest, DESTINATION, "body.destination")
        or _str(dest, "database", "body.destination")
        or _str(dest, "table", "body.destination")
        or _columns(dest.get("columns"), "body.destination.columns")
    )
    if problem:
        return problem
    if dest.get("managedTable", True) and "tableDefinition" not in dest:
        return "body.destination.tableDefinition: required for a managed table"
    return _mappings(body["fieldMappings"], "body.fieldMappings") if "fieldMappings" in body else None


def update_body(body: Any, stored_kafka: dict[str, Any]) -> str | None:
    """A PATCH ``/clickpipes/{id}`` body: only ``ClickPipeUpdate``'s fields."""
    problem = unknown_field(body, PATCH, "body")
    if problem:
        return problem
    if not body:
        return "body: empty update"
    if "name" in body and (problem := _str(body, "name", "body")):
        return problem
    if "source" in body:
        problem = unknown_field(body["source"], SOURCE, "body.source")
        if problem:
            return problem
        if "kafka" in body["source"]:
            problem = kafka_source(body["source"]["kafka"], "body.source.kafka", stored_kafka)
            if problem:
                return problem
    if "destination" in body:
        problem = unknown_field(body["destination"], PATCH_DESTINATION, "body.destination") or _columns(
            body["destination"].get("columns"), "body.destination.columns"
        )
        if problem:
            return problem
    return _mappings(body["fieldMappings"], "body.fieldMappings") if "fieldMappings" in body else None
