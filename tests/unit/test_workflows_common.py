"""Both GitHub workflows checked offline: pinned actions and images, make targets that exist, rtfin commands
that parse with the real CLI, RTFIN__ keys that rtfin knows, secrets only from `secrets.*`."""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.unit.shipping import (
    ROOT,
    WORKFLOWS,
    load_yaml,
    resolve_cli,
    secret_env_keys,
    settings_env_keys,
)

pytestmark = pytest.mark.unit

FILES = sorted(WORKFLOWS.glob("*.yml"))
EXPR = re.compile(r"\$\{\{\s*(.*?)\s*\}\}")


def steps(wf: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for job_id, job in wf["jobs"].items():
        for step in job.get("steps", []):
            yield job_id, step


def env_maps(wf: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield wf.get("env") or {}
    for job in wf["jobs"].values():
        yield job.get("env") or {}
        yield (job.get("container") or {}).get("env") or {}
        for step in job.get("steps", []):
            yield step.get("env") or {}


def rtfin_commands(script: str) -> Iterator[list[str]]:
    """Every `rtfin ...` invocation of a shell script, with $VARS replaced by a sample value."""
    for line in script.splitlines():
        for m in re.finditer(r"(?:^|&&|\|\||;|\bthen\b|\bdo\b)\s*(rtfin\s[^;&|]*)", line):
            text = re.sub(r"\$\{?(RTFIN_PROFILE|TARGET)\}?", "dev", EXPR.sub("x", m.group(1)))
            yield shlex.split(text)[1:]


def triggers(wf: dict[str, Any]) -> dict[str, Any]:
    on = wf.get("on", wf.get(True))  # YAML 1.1 reads a bare `on` key as True
    return on if isinstance(on, dict) else {name: None for name in ([on] if isinstance(on, str) else on)}


@pytest.fixture(scope="module", params=[f.name for f in FILES])
def workflow(request: pytest.FixtureRequest) -> dict[str, Any]:
    return load_yaml(WORKFLOWS / request.param)  # type: ignore[no-any-return]


def test_both_workflows_exist() -> None:
    assert {f.name for f in FILES} == {"ci.yml", "deploy.yml"}


def test_actions_and_images_are_pinned(workflow: dict[str, Any]) -> None:
    for job_id, job in workflow["jobs"].items():
        container = job.get("container")
        if container:
            image = container["image"] if isinstance(container, dict) else container
            assert ":" in image and not image.endswith(":latest"), f"{job_id}: container {image} not pinned"
    for job_id, step in steps(workflow):
        uses = step.get("uses")
        if uses:
            action, _, ref = uses.partition("@")
            assert re.fullmatch(r"v\d+(\.\d+)*|[0-9a-f]{40}", ref), (
                f"{job_id}: {uses} is not pinned to a version"
            )
            assert not action.startswith("docker://") or not uses.endswith(":latest")


def test_make_targets_exist(workflow: dict[str, Any]) -> None:
    targets = set(re.findall(r"^([A-Za-z][\w-]*):", (ROOT / "Makefile").read_text(), re.M))
    for job_id, step in steps(workflow):
        for target in re.findall(r"\bmake\s+([\w-]+)", step.get("run", "")):
            assert target in targets, f"{job_id}: `make {target}` is not a Makefile target"


def test_rtfin_commands_parse_with_the_real_cli(workflow: dict[str, Any]) -> None:
    for _, step in steps(workflow):
        for argv in rtfin_commands(step.get("run", "")):
            resolve_cli(argv)  # raises a usage error for an unknown command or option


def test_rtfin_env_keys_are_known_settings(workflow: dict[str, Any]) -> None:
    known = settings_env_keys() | {"RTFIN_PROFILE", "RTFIN_CONFIG", "RTFIN_TOML"}
    for env in env_maps(workflow):
        unknown = {k for k in env if k.startswith("RTFIN")} - known
        assert not unknown, f"{sorted(unknown)} are not rtfin settings"


def test_secrets_come_only_from_github_secrets(workflow: dict[str, Any]) -> None:
    secret_keys = secret_env_keys()
    for env in env_maps(workflow):
        for key, value in env.items():
            if key in secret_keys:
                assert re.fullmatch(rf"\$\{{\{{ secrets\.{key} \}}\}}", str(value)), f"{key}: {value!r}"
    for job_id, step in steps(workflow):
        script = step.get("run", "")
        assert not re.search(r"\$\{\{[^}]*\bsecrets\.", script), (
            f"{job_id}: a secret expanded in a script (use env:)"
        )
        assert not re.search(r"\b(echo|printf)\b[^\n]*\$\{?RTFIN__\w*(PASSWORD|TOKEN|SECRET|API_KEY)", script)


def test_yaml_has_no_tabs_or_duplicate_job_names() -> None:
    for path in FILES:
        text = Path(path).read_text()
        assert "\t" not in text
        names = [j.get("name") for j in load_yaml(path)["jobs"].values() if j.get("name")]
        assert len(names) == len(set(names))
