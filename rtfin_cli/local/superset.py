"""The local Superset: Superset 6.x from its own virtualenv (made by `make setup`), served by gunicorn.

``<data_dir>/superset/`` holds the generated ``superset_config.py``, ``secret_key`` and ``admin_password``
(both 0600) and the sqlite metadata database. Initialisation (db upgrade, admin user, roles) runs once;
later starts reuse it.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from rtfin_cli.errors import ProcessError
from rtfin_cli.local.supervisor import Service, ServiceStatus, private_dir
from rtfin_cli.locate import read_secret

VENV_DIR = Path("venvs") / "superset"  # under the cache dir
ADMIN_USER = "admin"

CONFIG = '''\
"""Superset configuration written by rtfin (rtfin_cli/local/superset.py) on every start: do not edit."""

import os
import re
from pathlib import Path

from superset.constants import PASSWORD_MASK
from superset.utils.log import DBEventLogger

os.umask(0o077)  # superset.db, its journals and whatever else Superset writes: owner only
_HOME = Path(__file__).resolve().parent
_SECRET_FIELD = re.compile(r"pass|secret|token|private_key|credential|encrypted_extra|sqlalchemy_uri", re.I)


def _scrub(value):
    """A request payload with every field whose name says secret masked (nested dicts and lists too)."""
    if isinstance(value, dict):
        return {k: PASSWORD_MASK if _SECRET_FIELD.search(str(k)) else _scrub(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_scrub(v) for v in value]
    return value


class ScrubbedEventLogger(DBEventLogger):
    """Superset's action log (the `logs` table) without secrets: it stores each request's form and JSON
    body, e.g. the asset import's `passwords` field; those fields are masked before they are stored."""

    def log(self, *args, **kwargs):
        kwargs["records"] = [_scrub(r) for r in kwargs.get("records") or []]
        kwargs["curated_payload"] = _scrub(kwargs.get("curated_payload"))
        return super().log(*args, **kwargs)


EVENT_LOGGER = ScrubbedEventLogger()
SECRET_KEY = (_HOME / "secret_key").read_text().strip()
SQLALCHEMY_DATABASE_URI = "sqlite:///" + str(_HOME / "superset.db") + "?check_same_thread=false"
FEATURE_FLAGS = {
    "DASHBOARD_NATIVE_FILTERS": True,
    "ENABLE_TEMPLATE_PROCESSING": True,
    "DASHBOARD_CROSS_FILTERS": True,
}
WTF_CSRF_ENABLED = True
WTF_CSRF_TIME_LIMIT = None
TALISMAN_ENABLED = False
CONTENT_SECURITY_POLICY_WARNING = False
SESSION_COOKIE_SAMESITE = "Lax"
RATELIMIT_ENABLED = True
RATELIMIT_STORAGE_URI = "memory://"
RATELIMIT_APPLICATION = None  # no app-wide limit: one dashboard fires dozens of requests at once
AUTH_RATE_LIMITED = True
AUTH_RATE_LIMIT = "10 per minute"  # per client address: POSTs to the login form (FAB's own limit)


def _failed_login(response):
    return response.status_code == 401


def FLASK_APP_MUTATOR(app):
    """AUTH_RATE_LIMIT on the login form (Superset 6.1 skips it: its auth view has no blueprint yet when the
    limit is applied) and on the JWT login API (/api/v1/security/login, which FAB leaves unlimited; failed
    attempts only count there)."""
    sm = app.appbuilder.sm
    if getattr(sm.auth_view, "blueprint", None) is not None:
        sm.limiter.limit(AUTH_RATE_LIMIT, methods=["POST"])(sm.auth_view.blueprint)
    for view in app.appbuilder.baseviews:
        if type(view).__name__ == "SecurityApi":
            sm.limiter.limit(AUTH_RATE_LIMIT, methods=["POST"], deduct_when=_failed_login)(view.blueprint)


CACHE_CONFIG = {"CACHE_TYPE": "SimpleCache", "CACHE_DEFAULT_TIMEOUT": 300}
DATA_CACHE_CONFIG = {"CACHE_TYPE": "NullCache"}
FILTER_STATE_CACHE_CONFIG = {"CACHE_TYPE": "SimpleCache", "CACHE_DEFAULT_TIMEOUT": 86400}
EXPLORE_FORM_DATA_CACHE_CONFIG = {"CACHE_TYPE": "SimpleCache", "CACHE_DEFAULT_TIMEOUT": 86400}
SUPERSET_WEBSERVER_TIMEOUT = 120
SQLLAB_CTAS_NO_LIMIT = True
ROW_LIMIT = 10000
PREVENT_UNSAFE_DB_CONNECTIONS = True
LOG_LEVEL = "WARNING"
'''


@dataclass
class LocalSuperset:
    """Initialise, run, stop and probe the local Superset. ``data_dir`` is rtfin's local data dir."""

    data_dir: Path
    cache_dir: Path
    port: int = 8088
    workers: int = 1
    name: str = "superset"
    new_password: str | None = field(default=None, init=False)  # set by the start that initialised it

    def __post_init__(self) -> None:
        self.data_dir = Path(self.data_dir).resolve()
        self.cache_dir = Path(self.cache_dir).resolve()
        self.home = self.data_dir / self.name
        self.service = Service(self.name, self.data_dir, self.port)

    # -- paths -----------------------------------------------------------------------------------
    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def venv(self) -> Path:
        return self.cache_dir / VENV_DIR

    @property
    def password_file(self) -> Path:
        return self.home / "admin_password"

    def _bin(self, name: str) -> str:
        path = self.venv / "bin" / name
        if not path.exists():
            raise ProcessError(
                f"Superset is not installed ({path} missing)",
                "Run `make setup` (it builds the Superset virtualenv).",
            )
        return str(path)

    def env(self) -> dict[str, str]:
        return {
            "SUPERSET_CONFIG_PATH": str(self.home / "superset_config.py"),
            "FLASK_APP": "superset.app:create_app()",
            "PYTHONUNBUFFERED": "1",
            "SUPERSET_LOAD_EXAMPLES": "no",
            "PATH": f"{self.venv / 'bin'}:{os.environ.get('PATH', '')}",
        }

    # -- init ------------------------------------------------------------------------------------
    def admin_password(self) -> str | None:
        return read_secret(self.password_file)

    def _write_private(self, path: Path, text: str) -> None:
        """Write ``text`` to a file only the owner can read (also when it existed with wider rights)."""
        path.touch(mode=0o600, exist_ok=True)
        os.chmod(path, 0o600)
        path.write_text(text)

    def _restrict(self) -> None:
        """Owner-only home: the directory and every file in it (metadata db and journals of older starts)."""
        os.chmod(self.home, 0o700)
        for path in self.home.rglob("*"):
            os.chmod(path, 0o700 if path.is_dir() else 0o600)

    def init(self) -> str | None:
        """Write the config; on first use create the metadata db, roles and the admin user.

        Returns the admin password when initialisation just completed (to be shown once), else None.
        """
        self.home.mkdir(parents=True, exist_ok=True)
        self._restrict()
        self._write_private(self.home / "superset_config.py", CONFIG)
        if not (self.home / "secret_key").exists():
            self._write_private(self.home / "secret_key", secrets.token_urlsafe(48) + "\n")
        marker = self.home / ".initialized"
        if marker.exists():
            return None
        if self.admin_password() is None:
            self._write_private(self.password_file, secrets.token_urlsafe(18) + "\n")
        password = self.admin_password() or ""
        superset = self._bin("superset")
        # the password goes to create-admin's prompt on stdin: an argument would show in the process list
        steps = [
            ([superset, "db", "upgrade"], ""),
            ([superset, "fab", "create-admin", "--username", ADMIN_USER, "--firstname", "rtfin",
              "--lastname", "admin", "--email", "admin@rtfin.local"], f"{password}\n{password}\n"),
            ([superset, "init"], ""),
        ]  # fmt: skip
        log = self.service.log_file
        private_dir(log.parent)
        for cmd, stdin in steps:
            with open(os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600), "ab") as out:
                proc = subprocess.run(
                    cmd, input=stdin.encode(), stdout=out, stderr=subprocess.STDOUT, env={**os.environ, **self.env()},
                    cwd=self.home, umask=0o077,
                )  # fmt: skip
            if proc.returncode != 0:
                shown = " ".join(cmd[1:3])
                raise ProcessError(
                    f"`superset {shown}` failed (code {proc.returncode}): {self.service.log_tail(3)}",
                    f"Full log: {log}",
                )
        self._write_private(marker, time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()) + "\n")
        return password  # shown once: this is the first start that completed initialisation

    # -- lifecycle -------------------------------------------------------------------------------
    def start(self, timeout: float = 180.0) -> int:
        """Initialise if needed, start gunicorn and wait for /health; returns the pid.

        When this start completed the initialisation, ``new_password`` holds the generated admin password
        (to be shown once).
        """
        if (pid := self.service.pid()) is not None:
            raise ProcessError(
                f"Superset is already running (pid {pid}) on {self.url}",
                "Stop it with `rtfin local superset stop`.",
            )
        self.new_password = self.init()
        cmd = [
            self._bin("gunicorn"), "--bind", f"127.0.0.1:{self.port}", "--workers", str(self.workers),
            "--worker-class", "gthread", "--threads", "8", "--timeout", "120", "--graceful-timeout", "10",
            "--limit-request-line", "0", "--limit-request-field_size", "0", "--no-control-socket",
            "superset.app:create_app()",
        ]  # fmt: skip
        return self.service.start(cmd, env=self.env(), cwd=self.home, ready=self.ready, timeout=timeout)

    def ready(self) -> bool:
        """True when Superset answers /health with OK."""
        import httpx

        resp = httpx.get(f"{self.url}/health", timeout=2.0)
        return resp.status_code == 200 and resp.text.strip() == "OK"

    def stop(self, timeout: float = 20.0) -> bool:
        return self.service.stop(timeout)

    def status(self) -> ServiceStatus:
        return self.service.status()


def from_settings(local: object) -> LocalSuperset:
    """The Superset described by LocalSettings."""
    from rtfin_cli.settings import LocalSettings

    assert isinstance(local, LocalSettings)
    return LocalSuperset(
        data_dir=Path(local.data_dir), cache_dir=Path(local.cache_dir), port=local.superset_port
    )
