"""The ClickPipes client's real HTTP calls against the strict fake of the ClickHouse Cloud API
(tests/fakes/clickpipes_cloud.py, derived from the official Terraform provider): bodies the API would
refuse are refused, idempotence is checked on what the fake holds, idle and revoked keys are modelled."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from rtfin_cli.errors import AuthError, ConfigError, RtfinError, ServiceUnavailable
from rtfin_cli.report import EventKind, ListReporter
from rtfin_cli.settings import RtfinSettings
from rtfin_cli.warehouse import clickpipes, clickpipes_contract
from rtfin_cli.warehouse.records import SCHEMAS
from tests.conftest import run_cli
from tests.fakes import clickpipes_cloud, clickpipes_schema
from tests.fakes.clickpipes_cloud import KEY, ORG, SECRET, SVC, FakeCloud

SASL = {"security_protocol": "SASL_SSL", "sasl_username": "u", "sasl_password": "kafka-pw"}


@pytest.fixture(autouse=True)
def _cheap_marks(monkeypatch: pytest.MonkeyPatch) -> None:
    """The credential marks' slow hash is for the file at rest; tests need not pay for it."""
    monkeypatch.setattr(clickpipes_contract.CredentialMarks, "ROUNDS", 1000)


@pytest.fixture()
def cloud() -> Iterator[FakeCloud]:
    with clickpipes_cloud.running() as srv:
        yield srv


def _settings(cloud: FakeCloud, tmp_path: Path, key_secret: str = SECRET, source_type: str = "kafka",
              replicas: int = 1, **kafka: Any) -> RtfinSettings:  # fmt: skip
    return RtfinSettings(
        kafka={"bootstrap": "broker.example:9092", **SASL, **kafka},
        clickhouse={
            "ingest": "clickpipes",
            "clickpipes": {
                "api_url": cloud.url,
                "organization_id": ORG,
                "service_id": SVC,
                "key_id": KEY,
                "key_secret": key_secret,
                "source_type": source_type,
                "replicas": replicas,
            },  # fmt: skip
        },
        local={"data_dir": str(tmp_path / ".rtfin")},
    )


def _types() -> dict[str, dict[str, str]]:
    return {t: {c: "String" for c, _ in cols} | {"_topic": "LowCardinality(String)", "_partition": "Int32", "_offset": "Int64"}
            for t, cols in SCHEMAS.items()}  # fmt: skip


def _api(s: RtfinSettings, reporter: ListReporter | None = None) -> clickpipes.ClickPipesApi:
    api = clickpipes.ClickPipesApi(s, reporter=reporter)
    api.wake_poll_s = 0.01
    return api


def _sync(s: RtfinSettings, types: dict[str, dict[str, str]] | None = None, **kw: Any) -> list[Any]:
    api = _api(s)
    try:
        return clickpipes.sync(api, clickpipes.desired(s, types or _types()), **kw)
    finally:
        api.close()


def _raw(cloud: FakeCloud, method: str, path: str, body: Any) -> httpx.Response:
    base = f"/v1/organizations/{ORG}/services/{SVC}/clickpipes"
    return httpx.request(method, cloud.url + base + path, json=body, auth=(KEY, SECRET))


# -- the strict fake refuses what the API refuses


def test_strict_fake_rejects_the_old_create_and_update_bodies(cloud: FakeCloud, tmp_path: Path) -> None:
    body = clickpipes.desired(_settings(cloud, tmp_path), _types())[0]
    old = {**body, "description": "rtfin: rtfin.news.raw -> rtfin_raw.news"}  # what rtfin sent before
    resp = _raw(cloud, "POST", "", old)
    assert resp.status_code == 400 and resp.json()["error"] == "BAD_REQUEST: body.description: unknown field"
    assert _raw(cloud, "POST", "", body).status_code == 200
    pid = next(iter(cloud.pipes))
    old_patch = {"description": "x", "destination": {"columns": body["destination"]["columns"]}}
    resp = _raw(cloud, "PATCH", f"/{pid}", old_patch)
    assert resp.status_code == 400 and "body.description: unknown field" in resp.json()["error"]


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (lambda b: b["source"]["kafka"].update(sslMode="x"), "body.source.kafka.sslMode: unknown field"),
        (lambda b: b["source"]["kafka"].pop("topics"), "body.source.kafka.topics: required"),
        (lambda b: b["source"]["kafka"].update(format="JSON"), "body.source.kafka.format: must be one of"),
        (lambda b: b["source"]["kafka"].update(type="redpanda"), "redpanda supports SCRAM-SHA-256"),
        (lambda b: b["source"]["kafka"].pop("credentials"), "credentials: required for PLAIN"),
        (
            lambda b: b["scaling"].update(replicas=11),
            "body.scaling.replicas: must be an integer from 1 to 10",
        ),
        (lambda b: b["destination"].pop("database"), "body.destination.database: required"),
        (lambda b: b["destination"].update(managedTable=True), "tableDefinition: required"),
        (lambda b: b["source"]["kafka"].update(offset={"strategy": "from_timestamp"}), "timestamp: required"),
    ],
)
def test_strict_fake_rejects_invalid_create_bodies(cloud: FakeCloud, tmp_path: Path, change: Any,
                                                   problem: str) -> None:  # fmt: skip
    body = clickpipes.desired(_settings(cloud, tmp_path), _types())[0]
    change(body)
    resp = _raw(cloud, "POST", "", body)
    assert resp.status_code == 400 and problem in resp.json()["error"], resp.json()
    assert not cloud.pipes


def test_strict_fake_rejects_patch_fields_outside_the_patch_schema(cloud: FakeCloud, tmp_path: Path) -> None:
    _sync(_settings(cloud, tmp_path))
    pid = next(iter(cloud.pipes))
    for body, problem in [
        ({"scaling": {"replicas": 2}}, "body.scaling: unknown field"),
        ({"destination": {"table": "other"}}, "body.destination.table: unknown field"),
        ({"source": {"kafka": {"authentication": "SCRAM-SHA-256"}}}, "credentials: required"),
        ({}, "body: empty update"),
    ]:
        resp = _raw(cloud, "PATCH", f"/{pid}", body)
        assert resp.status_code == 400 and problem in resp.json()["error"], (body, resp.json())


@pytest.mark.parametrize(
    ("source_type", "kafka"),
    [
        ("kafka", {"sasl_mechanism": "PLAIN"}),
        ("kafka", {"sasl_mechanism": "SCRAM-SHA-256"}),
        ("redpanda", {"sasl_mechanism": "SCRAM-SHA-512"}),
        ("confluent", {"sasl_mechanism": "PLAIN"}),
        ("warpstream", {"sasl_mechanism": "PLAIN"}),
        ("msk", {"sasl_mechanism": "SCRAM-SHA-512"}),
        ("azureeventhub", {"sasl_username": "$ConnectionString", "sasl_password": "Endpoint=sb://x/;K=v"}),
    ],
)
def test_every_accepted_setting_makes_bodies_the_fake_accepts(cloud: FakeCloud, tmp_path: Path,
                                                              source_type: str, kafka: Any) -> None:  # fmt: skip
    s = _settings(cloud, tmp_path, source_type=source_type, **kafka)
    for body in clickpipes.desired(s, _types()):
        assert clickpipes_schema.create_body(body) is None
    assert [p.action for p in _sync(s)] == ["created"] * 3


# -- configuration the API cannot take is refused before any request


@pytest.mark.parametrize(
    ("source_type", "kafka", "named"),
    [
        ("kafka", {"security_protocol": "PLAINTEXT"}, "kafka.security_protocol = 'PLAINTEXT'"),
        ("kafka", {"security_protocol": "SSL"}, "kafka.security_protocol = 'SSL'"),
        ("redpanda", {"sasl_mechanism": "PLAIN"}, "kafka.sasl_mechanism = 'PLAIN'"),
        ("msk", {"sasl_mechanism": "SCRAM-SHA-256"}, "allowed: SCRAM-SHA-512"),
        ("confluent", {"sasl_mechanism": "SCRAM-SHA-512"}, "source_type = 'confluent' (allowed: PLAIN)"),
        ("azureeventhub", {}, "kafka.sasl_username must be '$ConnectionString'"),
        ("kafka", {"sasl_password": None}, "kafka.sasl_password"),
    ],
)
def test_unsupported_settings_fail_before_any_request(cloud: FakeCloud, tmp_path: Path, source_type: str,
                                                      kafka: Any, named: str) -> None:  # fmt: skip
    s = _settings(cloud, tmp_path, source_type=source_type, **kafka)
    with pytest.raises(ConfigError) as err:
        clickpipes.ClickPipesApi(s)
    assert named in err.value.message and err.value.exit_code == 3
    assert "kafka-pw" not in err.value.message and cloud.requests == []


def _cli_env(cloud: FakeCloud, **extra: str) -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("RTFIN")} | {
        "RTFIN__CLICKHOUSE__INGEST": "clickpipes", "RTFIN__CLICKHOUSE__CLICKPIPES__API_URL": cloud.url,
        "RTFIN__CLICKHOUSE__CLICKPIPES__ORGANIZATION_ID": ORG, "RTFIN__CLICKHOUSE__CLICKPIPES__SERVICE_ID": SVC,
        "RTFIN__CLICKHOUSE__CLICKPIPES__KEY_ID": KEY, "RTFIN__CLICKHOUSE__CLICKPIPES__KEY_SECRET": SECRET,
    } | extra  # fmt: skip


def test_cli_refuses_plaintext_kafka_with_exit_3(cloud: FakeCloud, tmp_path: Path) -> None:
    proc = run_cli("transform", "pipes", "start", env=_cli_env(cloud), cwd=tmp_path)
    assert proc.returncode == 3, proc.stderr
    assert "kafka.security_protocol = 'PLAINTEXT'" in proc.stdout + proc.stderr
    assert cloud.requests == []


# -- sync: create, idempotence, updates


def test_first_run_creates_three_pipes_second_run_sends_nothing(cloud: FakeCloud, tmp_path: Path) -> None:
    s = _settings(cloud, tmp_path)
    first = _sync(s)
    assert [(p.name, p.action) for p in first] == [
        ("rtfin-news", "created"), ("rtfin-stock_aggs", "created"), ("rtfin-news_sentiment", "created"),
    ]  # fmt: skip
    assert len(cloud.calls("POST")) == 3
    assert cloud.calls("PATCH") == []  # created running: no start, although the answer said Unknown
    news = cloud.calls("POST")[0][2]
    assert news["source"]["kafka"]["credentials"] == {"username": "u", "password": "kafka-pw"}
    assert {"sourceField": "_offset", "destinationField": "_offset"} in news["fieldMappings"]
    assert {"sourceField": "insights", "destinationField": "insights"} in news["fieldMappings"]
    assert news["source"]["kafka"]["consumerGroup"] == "rtfin-clickpipes-news"
    assert "kafka-pw" not in (tmp_path / ".rtfin" / "clickpipes" / f"{ORG}-{SVC}.json").read_text()

    cloud.requests.clear()
    second = _sync(s)
    assert [p.action for p in second] == ["unchanged"] * 3
    assert [r[0] for r in cloud.requests] == ["GET"]
    assert {p["state"] for p in cloud.pipes.values()} == {"Running"} and len(cloud.pipes) == 3


def test_a_changed_column_patches_only_that_pipe_and_only_the_patch_fields(cloud: FakeCloud,
                                                                           tmp_path: Path) -> None:  # fmt: skip
    s = _settings(cloud, tmp_path)
    _sync(s)
    changed = _types()
    changed["news"]["title"] = "LowCardinality(String)"
    cloud.requests.clear()
    out = _sync(s, changed)
    assert [p.action for p in out] == ["updated", "unchanged", "unchanged"]
    (patch,) = cloud.calls("PATCH")
    assert patch[1].endswith(out[0].id) and set(patch[2]) == {"destination"}
    assert {"name": "title", "type": "LowCardinality(String)"} in patch[2]["destination"]["columns"]
    assert _sync(s, changed)[0].action == "unchanged"


def test_a_new_password_is_sent_once(cloud: FakeCloud, tmp_path: Path) -> None:
    _sync(_settings(cloud, tmp_path))
    s = _settings(cloud, tmp_path, sasl_password="rotated-pw")
    cloud.requests.clear()
    assert [p.action for p in _sync(s)] == ["updated"] * 3
    assert [r[2] for r in cloud.calls("PATCH")] == [
        {"source": {"kafka": {"credentials": {"username": "u", "password": "rotated-pw"}}}}
    ] * 3
    assert {c["password"] for c in cloud.secrets.values()} == {"rotated-pw"}
    cloud.requests.clear()
    assert [p.action for p in _sync(s)] == ["unchanged"] * 3 and cloud.calls("PATCH") == []


def test_replicas_change_through_the_scaling_endpoint(cloud: FakeCloud, tmp_path: Path) -> None:
    _sync(_settings(cloud, tmp_path))
    cloud.requests.clear()
    assert [p.action for p in _sync(_settings(cloud, tmp_path, replicas=3))] == ["updated"] * 3
    assert {(r[1].rsplit("/", 1)[1], str(r[2])) for r in cloud.calls("PATCH")} == {
        ("scaling", "{'replicas': 3}")
    }


def test_only_a_stopped_pipe_is_started(cloud: FakeCloud, tmp_path: Path) -> None:
    s = _settings(cloud, tmp_path)
    _sync(s)
    first, second = list(cloud.pipes.values())[:2]
    first["state"], second["state"] = "Stopped", "Provisioning"
    cloud.requests.clear()
    out = _sync(s)
    assert [p.action for p in out] == ["started", "unchanged", "unchanged"]
    assert [r[2] for r in cloud.calls("PATCH")] == [{"command": "start"}]


def test_a_failed_pipe_is_reported_not_restarted(cloud: FakeCloud, tmp_path: Path) -> None:
    s = _settings(cloud, tmp_path)
    _sync(s)
    next(iter(cloud.pipes.values()))["state"] = "Failed"
    cloud.requests.clear()
    rep = ListReporter()
    api = _api(s, rep)
    out = clickpipes.sync(api, clickpipes.desired(s, _types()))
    assert [p.action for p in out] == ["unchanged"] * 3 and [m for m, _, _ in cloud.requests] == ["GET"]
    (warning,) = rep.of(EventKind.WARNING)
    assert (
        warning.payload["message"]
        == "pipe rtfin-news is Failed: review its logs in the ClickHouse Cloud console"
    )


def test_a_format_change_is_refused_not_patched(cloud: FakeCloud, tmp_path: Path) -> None:
    s = _settings(cloud, tmp_path)
    _sync(s)
    next(iter(cloud.pipes.values()))["source"]["kafka"]["format"] = "Avro"
    cloud.requests.clear()
    with pytest.raises(RtfinError, match="differs in format"):
        _sync(s)
    assert cloud.calls("PATCH") == []


def test_dry_run_only_lists_and_returns_the_masked_requests(cloud: FakeCloud, tmp_path: Path) -> None:
    s = _settings(cloud, tmp_path)
    planned = _sync(s, dry_run=True)
    assert [p.action for p in planned] == ["would-create"] * 3
    assert [r[0] for r in cloud.requests] == ["GET"] and not cloud.pipes
    body = planned[0].requests[0]["body"]
    assert body["source"]["kafka"]["credentials"] == {"username": "***", "password": "***"}
    assert "description" not in body and planned[0].requests[0]["POST"].endswith("/clickpipes")
    _sync(s)
    changed = _types()
    changed["news"]["title"] = "LowCardinality(String)"
    cloud.requests.clear()
    planned = _sync(s, changed, dry_run=True)
    assert [p.action for p in planned] == ["would-update", "unchanged", "unchanged"]
    assert set(planned[0].requests[0]["body"]) == {"destination"} and cloud.calls("PATCH") == []


# -- service state and keys


def test_an_idle_service_is_woken_and_the_request_retried(tmp_path: Path) -> None:
    with clickpipes_cloud.running(service_state="idle", awaking_polls=2) as cloud:
        rep = ListReporter()
        api = _api(_settings(cloud, tmp_path), rep)
        out = clickpipes.sync(api, clickpipes.desired(api.settings, _types()))
        assert [p.action for p in out] == ["created"] * 3
        calls = [(m, p.rsplit("/", 1)[-1], b) for m, p, b in cloud.requests]
        assert calls[:2] == [("GET", "clickpipes", None), ("PATCH", "state", {"command": "awake"})]
        assert [c[1] for c in calls[2:5]] == [SVC] * 3 and calls[5] == ("GET", "clickpipes", None)
        said = [e.payload["message"] for e in rep.events]
        assert said == ["ClickHouse Cloud service is idle: waking it up", "service state: awaking",
                        "service state: running"]  # fmt: skip


def test_a_stopped_service_is_not_started(tmp_path: Path) -> None:
    with clickpipes_cloud.running(service_state="stopped") as cloud:
        with pytest.raises(ServiceUnavailable) as err:
            _sync(_settings(cloud, tmp_path))
        assert "Current state: stopped" in err.value.message and err.value.exit_code == 4
        assert [m for m, _, _ in cloud.requests] == ["GET"]


def test_a_revoked_key_is_an_auth_error_naming_the_api(cloud: FakeCloud, tmp_path: Path) -> None:
    s = _settings(cloud, tmp_path)
    cloud.key_ttl_requests = 0
    with pytest.raises(AuthError) as err:
        _sync(s)
    assert cloud.url.removeprefix("http://") in err.value.message and SECRET not in err.value.message
    with pytest.raises(AuthError):
        _sync(_settings(cloud, tmp_path, key_secret="wrong"))


def test_throttled_requests_wait_for_the_rate_limit_reset_and_retry(cloud: FakeCloud, tmp_path: Path) -> None:
    cloud.throttle = 2
    assert [p.action for p in _sync(_settings(cloud, tmp_path))] == ["created"] * 3
    assert [m for m, _, _ in cloud.requests[:3]] == ["GET"] * 3 and len(cloud.calls("POST")) == 3


def test_stop_start_and_states(cloud: FakeCloud, tmp_path: Path) -> None:
    s = _settings(cloud, tmp_path)
    _sync(s)
    api = _api(s)
    assert {p.state for p in clickpipes.set_all(api, "stop")} == {"Stopped"}
    assert {p.state for p in clickpipes.states(api)} == {"Stopped"}
    assert {p.state for p in clickpipes.set_all(api, "start")} == {"Running"}


def test_missing_settings_are_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        clickpipes.ClickPipesApi(RtfinSettings(clickhouse={"ingest": "clickpipes"}))
    assert "organization_id" in err.value.message and "key_secret" in err.value.message


def test_a_missing_raw_table_names_the_ddl_command(cloud: FakeCloud, tmp_path: Path) -> None:
    with pytest.raises(RtfinError) as err:
        clickpipes_contract.desired(_settings(cloud, tmp_path), {})
    assert "rtfin_raw.news does not exist" in err.value.message and "rtfin transform ddl" in err.value.hint


def test_cli_pipes_stop_wakes_an_idle_service_with_progress(tmp_path: Path) -> None:
    with clickpipes_cloud.running(service_state="idle", awaking_polls=0) as cloud:
        s = _settings(cloud, tmp_path)
        cloud.service_state = "running"
        _sync(s)
        cloud.service_state = "idle"
        env = _cli_env(cloud, RTFIN__KAFKA__SECURITY_PROTOCOL="SASL_SSL", RTFIN__KAFKA__SASL_USERNAME="u",
                       RTFIN__KAFKA__SASL_PASSWORD="kafka-pw")  # fmt: skip
        proc = run_cli("transform", "pipes", "stop", env=env, cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr
        out = proc.stdout + proc.stderr
        assert "service is idle: waking it up" in out and "service state: running" in out
        assert {p["state"] for p in cloud.pipes.values()} == {"Stopped"} and "kafka-pw" not in out
