""".github/workflows/ci.yml: lint/types/unit on every push; `make setup` + `make test` on PRs and main;
caches; the dashboard screenshot and benchmark results as artifacts."""

from __future__ import annotations

from typing import Any

import pytest

from tests.unit.shipping import WORKFLOWS, load_yaml
from tests.unit.test_workflows_common import triggers

pytestmark = pytest.mark.unit

CI = load_yaml(WORKFLOWS / "ci.yml")
JOBS: dict[str, dict[str, Any]] = CI["jobs"]


def runs(job: dict[str, Any]) -> list[str]:
    return [s["run"].strip() for s in job["steps"] if "run" in s]


def job_running(command: str) -> tuple[str, dict[str, Any]]:
    found = [(name, job) for name, job in JOBS.items() if any(command in r.split("\n") for r in runs(job))]
    assert len(found) == 1, f"exactly one job runs `{command}`: {[n for n, _ in found]}"
    return found[0]


def test_triggers() -> None:
    on = triggers(CI)
    assert "push" in on and "pull_request" in on
    assert (on["push"] or {}).get("branches", ["**"]) == ["**"], "lint and unit tests run on every push"


def test_lint_types_and_unit_run_on_every_push() -> None:
    for command in ("make lint", "make test-unit"):
        name, job = job_running(command)
        assert "if" not in job, f"{name} must run on every event"
    _, lint = job_running("make lint")
    assert any(s.get("uses", "").startswith("actions/setup-go@") for s in lint["steps"]), (
        "actionlint needs Go"
    )


def test_integration_and_e2e_run_like_ci_run_on_prs_and_main() -> None:
    name, job = job_running("make test")
    cond = job["if"]
    assert "pull_request" in cond and "refs/heads/main" in cond
    seq = runs(job)
    assert seq.index("make setup") < seq.index("make test")
    assert set(job.get("needs", [])) == {"lint", "unit"}
    assert job["timeout-minutes"] <= 90


def _cached_paths(job: dict[str, Any]) -> set[str]:
    paths: set[str] = set()
    for step in job["steps"]:
        if step.get("uses", "").startswith("actions/cache@"):
            paths |= {p.strip() for p in step["with"]["path"].splitlines() if p.strip()}
    return paths


def test_caches_pip_jars_maven_repo_and_model() -> None:
    _, job = job_running("make test")
    cached = _cached_paths(job)
    assert {".cache/pip", ".cache/jars", ".cache/m2"} <= cached
    assert any("huggingface" in p or "models" in p for p in cached)
    for name in ("lint", "unit"):
        assert ".cache/pip" in _cached_paths(JOBS[name])
    assert ".cache/go" in _cached_paths(JOBS["lint"])


def test_artifacts_screenshot_and_benchmarks() -> None:
    _, job = job_running("make test")
    uploads = {
        s["with"]["path"]: s for s in job["steps"] if s.get("uses", "").startswith("actions/upload-artifact@")
    }
    assert "tests/artifacts/*.png" in uploads and "bench/results.json" in uploads
    assert uploads["tests/artifacts/*.png"]["if"] == "always()", (
        "the screenshot helps most when a test failed"
    )
    bench = next(s for s in job["steps"] if s.get("run") == "make bench")
    assert bench["if"] == uploads["bench/results.json"]["if"], "results are uploaded when benchmarks ran"


def test_least_privilege() -> None:
    assert CI["permissions"] == {"contents": "read"}
    assert "secrets." not in (WORKFLOWS / "ci.yml").read_text(), "CI needs no secret"
