"""The local ClickHouse endpoint: chDB behind the ClickHouse HTTP interface, run as a supervised process.

``ClickHouseServer`` starts ``python -m rtfin_cli.local.clickhouse`` (see ``__main__``) detached, with
its pid/log files under the data directory, and probes it over HTTP. Nothing heavy is imported here.
"""

from __future__ import annotations

import shutil
import sys
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from rtfin_cli.errors import ProcessError
from rtfin_cli.local.clickhouse.credentials import ensure_password, read_password
from rtfin_cli.local.supervisor import Service, ServiceStatus

PASSWORD_ENV = "RTFIN_CLICKHOUSE_SERVER_PASSWORD"


@dataclass
class ClickHouseServer:
    """Run, stop and probe the endpoint. ``data_dir`` is the local stack's data directory (``.rtfin``):
    the database lives in ``<data_dir>/clickhouse/db``, the generated password in ``<data_dir>/clickhouse/``.
    """

    data_dir: Path
    port: int = 8123
    host: str = "127.0.0.1"
    user: str = "default"
    password: str | None = None  # None: the generated one
    max_body_mb: int = 256  # largest request body (INSERT data)
    loopback_network: bool = False  # url(), remote(), s3() ... may reach loopback addresses (never others)
    max_query_mb: int = 16  # largest SQL text
    name: str = "clickhouse"

    def __post_init__(self) -> None:
        self.data_dir = Path(self.data_dir).expanduser().resolve()
        self.home = self.data_dir / self.name
        self.service = Service(self.name, self.data_dir, self.port)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def credentials(self) -> tuple[str, str]:
        """(user, password); generates and stores the password on first use."""
        return self.user, self.password if self.password is not None else ensure_password(self.data_dir)

    def start(self, timeout: float = 60.0) -> int:
        """Start the server and wait until it answers an authenticated query; returns the pid."""
        if (pid := self.service.pid()) is not None:
            raise ProcessError(
                f"ClickHouse endpoint is already running (pid {pid}) on {self.url}",
                "Stop it with `rtfin local clickhouse stop`.",
            )
        user, password = self.credentials()
        cmd = [sys.executable, "-m", "rtfin_cli.local.clickhouse", "--data-dir", str(self.data_dir),
               "--host", self.host, "--port", str(self.port), "--user", user,
               "--max-body-mb", str(self.max_body_mb), "--max-query-mb", str(self.max_query_mb),
               *(["--loopback-network"] if self.loopback_network else [])]  # fmt: skip
        env = {PASSWORD_ENV: password} if self.password is not None else {}
        return self.service.start(cmd, env=env, ready=self.ready, timeout=timeout)

    def ready(self) -> bool:
        """True when the server answers ``SELECT 1`` with our credentials."""
        return self.query("SELECT 1", timeout=2.0).strip() == "1"

    def query(self, sql: str, timeout: float = 30.0) -> str:
        """A small query over HTTP as TabSeparated text (probes, CLI; clients use clickhouse-connect)."""
        import base64

        user, password = self.credentials()
        req = urllib.request.Request(f"{self.url}/", data=sql.encode(), method="POST")
        req.add_header("Authorization", "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode())
        with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310 - our own local URL
            return str(resp.read().decode())

    def healthy(self, timeout: float = 5.0) -> bool:
        """True when the engine answers a real query (``/ping`` answers even when every query fails)."""
        try:
            return self.query("SELECT 1", timeout=timeout).strip() == "1"
        except (OSError, ValueError):  # refused, timed out, or an HTTP error status
            return False

    def ping(self, timeout: float = 2.0) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/ping", timeout=timeout) as resp:  # noqa: S310
                return bool(resp.read() == b"Ok.\n")
        except OSError:
            return False

    def stop(self, timeout: float = 30.0) -> bool:
        return self.service.stop(timeout)

    def status(self) -> ServiceStatus:
        return self.service.status()

    def purge(self) -> None:
        """Delete the database (keeps the password)."""
        if self.service.pid() is not None:
            raise ProcessError("the ClickHouse endpoint is running; stop it before purging its data")
        shutil.rmtree(self.home / "db", ignore_errors=True)


def from_settings(local: object, clickhouse: object | None = None) -> ClickHouseServer:
    """The endpoint described by LocalSettings (and the user/explicit password of ClickHouseSettings)."""
    from rtfin_cli.settings import ClickHouseSettings, LocalSettings

    assert isinstance(local, LocalSettings)
    server = ClickHouseServer(
        data_dir=Path(local.data_dir), port=local.clickhouse_port, max_body_mb=local.clickhouse_max_body_mb,
        loopback_network=local.clickhouse_loopback_network,
    )  # fmt: skip
    if isinstance(clickhouse, ClickHouseSettings):
        server.user = clickhouse.user
        explicit = clickhouse.password.get_secret_value() if clickhouse.password else None
        if explicit and explicit != read_password(server.data_dir):
            server.password = explicit
    return server


__all__ = ["PASSWORD_ENV", "ClickHouseServer", "from_settings"]
