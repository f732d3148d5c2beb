""".github/workflows/deploy.yml: tag or manual dispatch (dev/prod, GHCR or ECR) builds and pushes the image,
then runs the same rtfin commands as an operator with the environment's secrets; PRs get a dry run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.unit.shipping import WORKFLOWS, load_yaml, secret_env_keys
from tests.unit.test_workflows_common import rtfin_commands, triggers

pytestmark = pytest.mark.unit

WF = load_yaml(WORKFLOWS / "deploy.yml")
JOBS: dict[str, dict[str, Any]] = WF["jobs"]


def commands(job: dict[str, Any]) -> list[list[str]]:
    return [argv for s in job["steps"] for argv in rtfin_commands(s.get("run", ""))]


def test_triggers_tag_dispatch_and_pull_request() -> None:
    on = triggers(WF)
    assert on["push"]["tags"] == ["v*"] and set(on["push"]) == {"tags"}, "deploys on tags only"
    inputs = on["workflow_dispatch"]["inputs"]
    assert inputs["environment"]["options"] == ["dev", "prod"]
    assert set(inputs["registry"]["options"]) == {"ghcr", "ecr"}
    assert "pull_request" in on


def test_image_is_built_and_pushed_before_the_deploy() -> None:
    image = JOBS["image"]
    assert "pull_request" in image["if"] and "!=" in image["if"]
    push = next(s for s in image["steps"] if s.get("uses", "").startswith("docker/build-push-action@"))
    assert push["with"]["file"] == "docker/Dockerfile" and push["with"]["target"] == "runtime"
    assert push["with"]["push"] is True
    logins = {s["uses"].split("@")[0]: s["if"] for s in image["steps"] if "login" in s.get("uses", "")}
    assert "ghcr" in logins["docker/login-action"] and "ecr" in logins["aws-actions/amazon-ecr-login"]
    assert image["permissions"]["packages"] == "write"
    assert JOBS["deploy"]["needs"] == "image"


def test_deploy_runs_the_operator_commands_in_order_with_the_environment() -> None:
    job = JOBS["deploy"]
    assert job["environment"] == "${{ inputs.environment || 'prod' }}"
    argv = [a[:2] for a in commands(job)]
    order = [argv.index(c) for c in (["transform", "run"], ["sentiment", "submit"], ["dashboard", "sync"])]
    assert order == sorted(order)
    assert argv.index(["verify"]) > order[-1], "rtfin verify runs after everything is deployed"
    for a in commands(job):
        assert "--dry-run" not in a
        if a[:2] in (["transform", "run"], ["sentiment", "submit"]):
            assert a[a.index("--target") + 1] == "dev"  # "$RTFIN_PROFILE", the environment's name
    assert job["env"]["RTFIN_PROFILE"] == job["environment"]


def test_every_secret_setting_can_be_set_per_environment() -> None:
    env = JOBS["deploy"]["env"]
    missing = secret_env_keys() - set(env)
    assert not missing, f"deploy cannot pass {sorted(missing)}"


def test_pull_requests_get_a_credential_free_dry_run() -> None:
    plan = JOBS["plan"]
    assert plan["if"] == "github.event_name == 'pull_request'"
    assert "environment" not in plan and "secrets." not in str(plan)
    changing = [a for a in commands(plan) if a[:2] != ["config", "show"]]
    assert {tuple(a[:2]) for a in changing} == {
        ("transform", "ddl"),
        ("sentiment", "submit"),
        ("dashboard", "sync"),
    }
    assert all("--dry-run" in a for a in changing)


def test_registry_is_configurable_and_permissions_minimal() -> None:
    assert (
        "inputs.registry" in WF["env"]["REGISTRY_KIND"]
        and "vars.RTFIN_REGISTRY" in WF["env"]["REGISTRY_KIND"]
    )
    assert WF["permissions"] == {"contents": "read"}
    assert WF["concurrency"]["cancel-in-progress"] is False, "a deploy is never cancelled half-way"


def test_a_secret_the_environment_lacks_counts_as_unset(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """GitHub expands a missing secret to "": rtfin must see it as unset, not as an empty value."""
    from rtfin_cli.settings import load_settings

    monkeypatch.chdir(tmp_path)  # no rtfin.toml

    environ = {
        "RTFIN__DATABRICKS__TOKEN": "",
        "RTFIN__KAFKA__BOOTSTRAP": "",
        "RTFIN__KAFKA__SASL_USERNAME": "u",
    }
    loaded = load_settings(None, "local", environ=environ)
    assert loaded.settings.databricks.token is None
    assert (
        loaded.settings.kafka.bootstrap == "127.0.0.1:9092" and loaded.sources["kafka.bootstrap"] == "default"
    )
    assert loaded.settings.kafka.sasl_username == "u" and loaded.sources["kafka.sasl_username"] == "env"
