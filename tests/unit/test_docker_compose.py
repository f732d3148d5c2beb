"""docker/compose.yaml checked offline (no Docker engine here): structure, pinned images, health checks,
volumes, rtfin settings keys and commands, no literal secrets, the `compose` profile matching its ports."""

from __future__ import annotations

import re
from typing import Any

import pytest

from rtfin_cli.settings import load_settings
from tests.unit.shipping import (
    DOCKER,
    ROOT,
    interpolate,
    load_yaml,
    resolve_cli,
    secret_env_keys,
    settings_env_keys,
)

pytestmark = pytest.mark.unit

COMPOSE = load_yaml(DOCKER / "compose.yaml")
SERVICES: dict[str, dict[str, Any]] = COMPOSE["services"]
RTFIN_TARGETS = {"runtime", "full"}
RTFIN_SERVICES = {n: s for n, s in SERVICES.items() if s.get("build", {}).get("target") in RTFIN_TARGETS}


def _env(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {k: str(v) for k, v in env.items()}


def _published(service: str, container_port: int) -> int:
    for spec in SERVICES[service].get("ports", []):
        *_, host, cont = str(spec).split(":")
        if int(cont) == container_port:
            return int(host)
    raise AssertionError(f"{service} does not publish {container_port}")


def _interpolated(node: Any) -> Any:
    """What `docker compose config` would see, with sample values for the required variables."""
    if isinstance(node, dict):
        return {k: _interpolated(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_interpolated(v) for v in node]
    return re.sub(r"<(\w+)>", r"sample-\1", interpolate(node)) if isinstance(node, str) else node


def test_valid_compose_specification() -> None:
    """The Compose Specification's own model (compose_spec, Rust bindings) accepts the file."""
    import json

    from compose_spec import PyCompose

    parsed = PyCompose.from_json(json.dumps(_interpolated(COMPOSE)))
    assert sorted(parsed.service_names()) == sorted(SERVICES)
    broken = _interpolated(COMPOSE)
    broken["services"]["kafka"]["healthcheck"]["interval"] = "soon"
    with pytest.raises(ValueError, match="duration"):
        PyCompose.from_json(json.dumps(broken))


def test_the_stack_has_every_required_service() -> None:
    assert {"kafka", "clickhouse", "superset", "news-producer", "stocks-producer", "loader"} <= set(SERVICES)
    assert SERVICES["kafka"]["image"].startswith("apache/kafka:")
    assert SERVICES["clickhouse"]["image"].startswith("clickhouse/clickhouse-server:")
    assert RTFIN_SERVICES["news-producer"]["command"] == ["produce", "news"]
    assert RTFIN_SERVICES["stocks-producer"]["command"] == ["produce", "stocks"]


def test_kafka_runs_in_kraft_mode_without_zookeeper() -> None:
    env = _env(SERVICES["kafka"])
    assert set(env["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
    assert "zookeeper" not in " ".join(SERVICES).lower() and not any("ZOOKEEPER" in k for k in env)
    assert env["KAFKA_CONTROLLER_QUORUM_VOTERS"].startswith(env["KAFKA_NODE_ID"] + "@")
    listeners = dict(x.split("://") for x in env["KAFKA_LISTENERS"].split(","))
    advertised = dict(x.split("://") for x in env["KAFKA_ADVERTISED_LISTENERS"].split(","))
    proto = dict(x.split(":") for x in env["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"].split(","))
    assert set(listeners) <= set(proto) and set(advertised) <= set(listeners)
    assert env["KAFKA_CONTROLLER_LISTENER_NAMES"] in listeners
    # rtfin containers use the internal listener, the host (profile `compose`) the published one
    internal = advertised[env["KAFKA_INTER_BROKER_LISTENER_NAME"]]
    assert _env(RTFIN_SERVICES["loader"])["RTFIN__KAFKA__BOOTSTRAP"] == internal
    assert re.fullmatch(r"[A-Za-z0-9_-]{22}", env["CLUSTER_ID"])


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_images_are_pinned_by_tag(name: str) -> None:
    image = interpolate(SERVICES[name]["image"])
    repo, _, tag = image.rpartition(":")
    assert repo and "/" not in tag, f"{name}: image {image!r} has no tag"
    assert tag != "latest", f"{name}: image {image!r} must be pinned, not :latest"


def test_built_services_use_targets_of_the_dockerfile() -> None:
    stages = set(re.findall(r"^FROM\s+\S+\s+AS\s+(\S+)", (DOCKER / "Dockerfile").read_text(), re.M | re.I))
    for name, svc in SERVICES.items():
        if "build" in svc:
            assert (DOCKER.parent / svc["build"]["context"].replace("..", ".")).resolve() == ROOT
            assert svc["build"]["dockerfile"] == "docker/Dockerfile"
            assert svc["build"]["target"] in stages, f"{name}: unknown build target"


def test_health_checks_and_dependencies() -> None:
    for name in ("kafka", "clickhouse", "superset"):
        check = SERVICES[name].get("healthcheck")
        assert check and check["test"][0] in {"CMD", "CMD-SHELL"}, f"{name} needs a health check"
    for name, svc in SERVICES.items():
        for dep, spec in (svc.get("depends_on") or {}).items():
            assert dep in SERVICES, f"{name} depends on unknown service {dep}"
            cond = spec["condition"]
            assert cond in {"service_healthy", "service_completed_successfully", "service_started"}
            if cond == "service_healthy":
                assert "healthcheck" in SERVICES[dep], f"{name} waits for {dep}'s health, which has no check"
            if cond == "service_completed_successfully":
                assert SERVICES[dep].get("restart") in {"no", "on-failure"}, f"{dep} must be one-shot"
            if "profiles" in SERVICES[dep]:
                assert set(svc.get("profiles", [])) & set(SERVICES[dep]["profiles"]), f"{name} -> {dep}"


def test_volumes_are_declared_and_data_is_persisted() -> None:
    declared = set(COMPOSE["volumes"])
    used = set()
    for svc in SERVICES.values():
        for spec in svc.get("volumes", []):
            source = str(spec).split(":")[0]
            if not source.startswith((".", "/")):
                used.add(source)
    assert used <= declared and declared <= used
    mounts = {name: [str(v).split(":")[1] for v in svc.get("volumes", [])] for name, svc in SERVICES.items()}
    assert _env(SERVICES["kafka"])["KAFKA_LOG_DIRS"] in mounts["kafka"]
    assert "/var/lib/clickhouse" in mounts["clickhouse"]
    assert "/var/lib/rtfin" in mounts["loader"]


def test_every_rtfin_env_key_is_a_known_setting() -> None:
    known = settings_env_keys()
    for name, svc in RTFIN_SERVICES.items():
        unknown = {k for k in _env(svc) if k.startswith("RTFIN__")} - known
        assert not unknown, f"{name}: {sorted(unknown)} are not rtfin settings"


def test_secrets_come_from_the_environment_never_literals() -> None:
    secrets = secret_env_keys()
    sensitive = re.compile(r"PASSWORD|SECRET|TOKEN|API_KEY")
    for name, svc in SERVICES.items():
        for key, value in _env(svc).items():
            if key in secrets or sensitive.search(key):
                assert re.fullmatch(r"\$\{[A-Z_]+(:?[-?][^}]*)?\}", value), f"{name}: {key} is a literal"
                required = f"<{value[2:].split(':')[0]}>"
                assert interpolate(value) in {"", required}, f"{name}: {key} has a default value"


def test_rtfin_commands_parse_with_the_real_cli() -> None:
    for name, svc in RTFIN_SERVICES.items():
        resolve_cli(svc["command"])  # raises a usage error for an unknown command or option
        assert _env(svc)["RTFIN_PROFILE"] == "local", f"{name}: the image has no rtfin.toml"


def test_compose_profile_points_at_the_published_ports() -> None:
    s = load_settings(ROOT / "rtfin.example.toml", "compose", environ={}).settings
    kafka_env = _env(SERVICES["kafka"])
    external = dict(x.split("://") for x in kafka_env["KAFKA_ADVERTISED_LISTENERS"].split(","))["EXTERNAL"]
    assert s.kafka.bootstrap == external
    assert int(external.rsplit(":", 1)[1]) == _published("kafka", 9094)
    assert (s.clickhouse.host, s.clickhouse.port) == ("127.0.0.1", _published("clickhouse", 8123))
    assert s.clickhouse.user == _env(SERVICES["clickhouse"])["CLICKHOUSE_USER"]
    assert s.dashboard.url == f"http://127.0.0.1:{_published('superset', 8088)}"
    assert s.clickhouse.ingest == "loader" and s.dashboard.backend == "superset"


def test_published_ports_bind_to_loopback_only() -> None:
    for name, svc in SERVICES.items():
        for spec in svc.get("ports", []):
            assert str(spec).startswith("127.0.0.1:"), f"{name} publishes {spec} on every interface"
