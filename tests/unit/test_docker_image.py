"""docker/Dockerfile and .dockerignore checked offline: multi-stage, small non-root runtime with `rtfin` as
entrypoint, no build tools or secrets in the final stage, base images pinned."""

from __future__ import annotations

import fnmatch
import json
import re
from dataclasses import dataclass, field

import pytest

from tests.unit.shipping import DOCKER, ROOT, resolve_cli, secret_env_keys

pytestmark = pytest.mark.unit

BUILD_TOOLS = ("gcc", "g++", "build-essential", "make", "maven", "jdk", "git", "curl", "wget", "pip install")


@dataclass
class Stage:
    name: str
    base: str
    lines: list[str] = field(default_factory=list)

    def instructions(self, op: str) -> list[str]:
        return [ln.split(None, 1)[1] for ln in self.lines if ln.split(None, 1)[0].upper() == op]


def _parse() -> tuple[dict[str, str], list[Stage]]:
    text = (DOCKER / "Dockerfile").read_text(encoding="utf-8")
    code = "\n".join(ln for ln in text.splitlines() if not ln.lstrip().startswith("#"))
    logical = re.sub(r"\\\n", " ", code)
    args: dict[str, str] = {}
    stages: list[Stage] = []
    for line in (ln.strip() for ln in logical.splitlines()):
        if not line:
            continue
        op = line.split(None, 1)[0].upper()
        if op == "FROM":
            m = re.fullmatch(r"FROM\s+(\S+)\s+AS\s+(\S+)", line, re.I)
            assert m, f"every stage is named: {line}"
            stages.append(Stage(m.group(2), m.group(1)))
        elif stages:
            stages[-1].lines.append(line)
        elif op == "ARG":
            name, _, default = line.split(None, 1)[1].partition("=")
            args[name] = default
    return args, stages


ARGS, STAGES = _parse()
BY_NAME = {s.name: s for s in STAGES}


def _base_image(stage: Stage) -> str:
    return re.sub(r"\$\{(\w+)\}", lambda m: ARGS[m.group(1)], stage.base)


def test_multi_stage_with_the_documented_targets() -> None:
    assert {"build", "runtime", "full", "superset"} <= set(BY_NAME)
    assert STAGES.index(BY_NAME["build"]) < STAGES.index(BY_NAME["runtime"])
    copies = BY_NAME["runtime"].instructions("COPY")
    assert any(c.startswith("--from=build ") for c in copies), "runtime copies the installed venv from build"
    head = (DOCKER / "Dockerfile").read_text().split("\nARG", 1)[0]
    for target in ("runtime", "full", "superset"):
        assert target in head, f"the header documents how to build target {target}"


def test_base_images_are_pinned() -> None:
    for stage in STAGES:
        image = _base_image(stage)
        if image in BY_NAME:
            continue  # built on an earlier stage
        repo, _, tag = image.rpartition(":")
        assert repo and tag and tag != "latest", f"stage {stage.name}: {image} is not pinned by tag"


def test_runtime_stage_is_small_non_root_and_runs_rtfin() -> None:
    rt = BY_NAME["runtime"]
    user = rt.instructions("USER")
    assert user and user[-1] not in {"root", "0"}, "the final user is not root"
    assert json.loads(rt.instructions("ENTRYPOINT")[-1]) == ["rtfin"]
    body = " ".join(rt.instructions("RUN")).lower()
    for tool in BUILD_TOOLS:
        assert not re.search(rf"(?<![\w-]){re.escape(tool)}(?![\w-])", body), f"runtime stage installs {tool}"
    assert _base_image(rt).endswith("-slim-bookworm") or "-slim" in _base_image(rt)


def test_no_secret_is_baked_into_any_stage() -> None:
    secrets = secret_env_keys()
    sensitive = re.compile(r"PASSWORD|SECRET|TOKEN|API_KEY", re.I)
    for stage in STAGES:
        for op in ("ENV", "ARG", "LABEL"):
            for text in stage.instructions(op):
                names = re.findall(r"([A-Za-z_][A-Za-z0-9_]*)=", text) or [text.split()[0]]
                for name in names:
                    assert name not in secrets and not sensitive.search(name), f"{stage.name}: {op} {name}"
    for name in ARGS:
        assert not sensitive.search(name)


def test_entrypoint_commands_of_the_image_parse() -> None:
    cmd = json.loads(BY_NAME["runtime"].instructions("CMD")[-1])
    assert cmd == ["--help"]
    resolve_cli(["produce", "news"])
    resolve_cli(["produce", "stocks"])


def _ignored(path: str, patterns: list[str]) -> bool:
    ignored = False
    for pat in patterns:
        negate = pat.startswith("!")
        pat = pat.lstrip("!").rstrip("/")
        hit = fnmatch.fnmatch(path, pat) or fnmatch.fnmatch(path, pat + "/*") or pat == "**"
        if pat.startswith("**/"):
            hit = hit or fnmatch.fnmatch(path, pat[3:]) or fnmatch.fnmatch(path.split("/")[-1], pat[3:])
        if hit:
            ignored = not negate
    return ignored


def test_dockerignore_sends_the_package_but_no_local_state_or_secrets() -> None:
    patterns = [
        ln.strip() for ln in (ROOT / ".dockerignore").read_text().splitlines() if ln.strip() and ln[0] != "#"
    ]
    for path in ("pyproject.toml", "README.md", "rtfin_cli/cli/main.py", "jobs/__init__.py"):
        assert not _ignored(path, patterns), f"{path} must reach the build context"
    for path in (".venv/bin/python", ".cache/jars/x.jar", ".rtfin/kafka.pid", ".git/HEAD", "rtfin.toml",
                 "docker/.env", "rtfin_cli/__pycache__/x.pyc", "tests/unit/test_cli.py"):  # fmt: skip
        assert _ignored(path, patterns), f"{path} must not reach the build context"
