"""Run the dbt project programmatically with a profiles.yml generated from rtfin settings.

The generated profile holds no secret: the password is ``{{ env_var('RTFIN_CLICKHOUSE_PASSWORD') }}``
and is set in this process's environment only for the duration of the dbt call. Arguments go to
dbtRunner as a list (never through a shell); ``--select`` values are checked against dbt's
selector grammar as well.
"""

from __future__ import annotations

import contextlib
import os
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from rtfin_cli.errors import ConfigError, RtfinError, UsageError
from rtfin_cli.settings import RtfinSettings

PASSWORD_ENV = "RTFIN_CLICKHOUSE_PASSWORD"
PROFILE = "rtfin"
# dbt node selectors: names, paths, tags, graph operators, methods (tag:, path:, source:...), commas.
_SELECTOR = re.compile(r"^[A-Za-z0-9_.:/*+@,\-]+$")


@dataclass
class NodeResult:
    name: str
    kind: str  # model | test | seed | snapshot | source
    status: str  # success | error | pass | fail | warn | skipped | runtime error
    seconds: float
    message: str = ""
    failures: int | None = None


@dataclass
class DbtOutcome:
    command: str
    success: bool
    seconds: float
    nodes: list[NodeResult] = field(default_factory=list)
    error: str = ""

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for n in self.nodes:
            key = f"{n.kind}:{n.status}"
            out[key] = out.get(key, 0) + 1
        return out

    def problems(self) -> list[NodeResult]:
        """Nodes that did not succeed or pass (errors, failures, warnings, skips)."""
        return [n for n in self.nodes if n.status not in ("success", "pass")]

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "counts": self.counts()}


def project_dir(settings: RtfinSettings) -> Path:
    configured = settings.clickhouse.dbt_project_dir
    path = (
        Path(configured).expanduser().resolve() if configured else Path(__file__).resolve().parents[2] / "dbt"
    )
    if not (path / "dbt_project.yml").exists():
        raise ConfigError(
            f"no dbt project at {path}", "Set clickhouse.dbt_project_dir to the folder with dbt_project.yml."
        )
    return path


def work_dir(settings: RtfinSettings) -> Path:
    """Where profiles, target and logs go: <local.data_dir>/dbt (ignored by git)."""
    path = settings.local.dbt_dir()
    path.mkdir(mode=0o700, parents=True, exist_ok=True)  # owner only, like the rest of the data directory
    return path


def profile(settings: RtfinSettings, target: str) -> dict[str, Any]:
    ch = settings.clickhouse
    output = {
        "type": "clickhouse",
        "driver": "http",
        "host": ch.host,
        "port": ch.port,
        "user": ch.user,
        "password": "{{ env_var('" + PASSWORD_ENV + "', '') }}",
        "schema": ch.database,
        "secure": ch.secure,
        "connect_timeout": int(max(1, ch.connect_timeout_s)),
        "send_receive_timeout": 600,
        "retries": 1,
        "threads": ch.dbt_threads,
        "check_exchange": False,
    }
    return {PROFILE: {"target": target, "outputs": {target: output}}}


def write_profile(settings: RtfinSettings, target: str) -> Path:
    """profiles.yml under the work dir (0600; it holds no secret, only an env_var reference)."""
    directory = work_dir(settings) / "profiles"
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "profiles.yml"
    path.write_text(yaml.safe_dump(profile(settings, target), sort_keys=False), encoding="utf-8")
    path.chmod(0o600)
    return directory


def check_selectors(values: list[str]) -> list[str]:
    out = []
    for value in values:
        for part in value.split():
            if not _SELECTOR.match(part) or part.startswith("-"):
                raise UsageError(
                    f"invalid dbt selector {part!r}",
                    "Use model names, tag:x, path:x, source:x, +/@ graph operators and commas.",
                )
            out.append(part)
    return out


@contextlib.contextmanager
def _password_env(password: str) -> Iterator[None]:
    old = os.environ.get(PASSWORD_ENV)
    os.environ[PASSWORD_ENV] = password
    try:
        yield
    finally:
        if old is None:
            os.environ.pop(PASSWORD_ENV, None)
        else:
            os.environ[PASSWORD_ENV] = old


def _node_result(r: Any) -> NodeResult:
    node = r.node
    status = str(getattr(r.status, "value", r.status))
    kind = str(getattr(node.resource_type, "value", node.resource_type))
    msg = getattr(r, "message", None) or ""
    if status in ("success", "pass"):
        msg = ""
    seconds = float(getattr(r, "execution_time", 0.0) or 0.0)
    return NodeResult(
        node.name, kind, status, seconds, " ".join(str(msg).split())[:500], getattr(r, "failures", None)
    )


def invoke(
    settings: RtfinSettings,
    command: str,
    select: list[str] | None = None,
    full_refresh: bool = False,
    target: str | None = None,
    extra: list[str] | None = None,
    progress: Callable[[str], None] | None = None,
) -> DbtOutcome:
    """Run ``dbt <command>`` (build, run, test, docs generate, source freshness, ...) in-process."""
    from dbt.cli.main import dbtRunner

    from rtfin_cli.warehouse.client import password

    args = _args(settings, command, target or settings_profile_name(settings))
    if select:
        args += ["--select", *check_selectors(select)]
    if full_refresh:
        args.append("--full-refresh")
    args += extra or []

    def callback(event: Any) -> None:
        if progress is not None and event.info.name == "NodeFinished":
            node = event.data.node_info
            progress(f"{node.resource_type} {node.node_name}: {node.node_status}")

    t0 = time.monotonic()
    with _password_env(password(settings)):
        res = dbtRunner(callbacks=[callback]).invoke(args)
    return _outcome(command, res, time.monotonic() - t0)


def _args(settings: RtfinSettings, command: str, target: str) -> list[str]:
    """dbt's command line: the project, a generated profile, paths under the work dir, a silent console."""
    proj = project_dir(settings)
    if not re.fullmatch(r"[A-Za-z0-9_\-]+", target):
        raise UsageError(f"invalid dbt target name {target!r}", "Use letters, digits, '-' and '_'.")
    work = work_dir(settings)
    return command.split() + [
        "--project-dir", str(proj),
        "--profiles-dir", str(write_profile(settings, target)),
        "--target", target,
        "--target-path", str(work / "target"),
        "--log-path", str(work / "logs"),
        "--vars", yaml.safe_dump({"raw_database": settings.clickhouse.raw_database}, default_flow_style=True),
        "--log-level", "none",  # console silent: progress goes through the callback; file log kept
        "--no-use-colors",
        "--no-send-anonymous-usage-stats",
        "--no-partial-parse",
    ]  # fmt: skip


def _outcome(command: str, res: Any, elapsed: float) -> DbtOutcome:
    """A dbtRunner result as a DbtOutcome: one NodeResult per node, an exception as a one-line error."""
    outcome = DbtOutcome(command, bool(res.success), elapsed)
    results = getattr(res.result, "results", None)
    if results:
        outcome.nodes = [_node_result(r) for r in results]
    if res.exception is not None:
        outcome.error = _one_line(res.exception)
        outcome.success = False
    return outcome


def settings_profile_name(settings: RtfinSettings) -> str:
    """The dbt target defaults to 'rtfin' (a model can branch on target.name with --target)."""
    return "rtfin"


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text[:400] or type(exc).__name__


def require_success(outcome: DbtOutcome) -> DbtOutcome:
    if outcome.error:
        raise RtfinError(f"dbt {outcome.command} failed: {outcome.error}", "Re-run with --debug for details.")
    return outcome
