"""Start, stop and probe the replay server as a supervised local service (like the local Kafka broker)."""

from __future__ import annotations

import json
import sys
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rtfin_cli.errors import ServiceUnavailable
from rtfin_cli.local.supervisor import Service, ServiceStatus


@dataclass
class MarketServer:
    """The replay server on ``host:port``; ``data_dir`` holds its pid and log files."""

    data_dir: Path
    port: int = 8765
    speed: float = 60.0
    rate_limit: float = 0.0
    host: str = "127.0.0.1"
    start_at: str | None = None
    end_at: str | None = None
    name: str = "market"

    def __post_init__(self) -> None:
        self.data_dir = Path(self.data_dir).resolve()
        self.service = Service(self.name, self.data_dir, self.port)

    @property
    def timeline_file(self) -> Path:
        """Where the replay keeps its clock, so a restart continues the same timeline."""
        return self.data_dir / "market" / "timeline.json"

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://{self.host}:{self.port}/stocks"

    def start(self, timeout: float = 30.0) -> int:
        cmd = [
            sys.executable,
            "-m",
            "rtfin_cli.local.market",
            "--host",
            self.host,
            "--port",
            str(self.port),
            "--speed",
            str(self.speed),
            "--rate-limit",
            str(self.rate_limit),
        ]
        if self.start_at:
            cmd += ["--start", self.start_at]
        if self.end_at:
            cmd += ["--end", self.end_at]
        cmd += ["--timeline", str(self.timeline_file)]  # continued across restarts; --start makes a new one
        return self.service.start(cmd, ready=self.ready, timeout=timeout)

    def ready(self) -> bool:
        self.control("status")
        return True

    def stop(self, timeout: float = 10.0) -> bool:
        return self.service.stop(timeout)

    def status(self) -> ServiceStatus:
        return self.service.status()

    def control(self, what: str, body: dict[str, Any] | None = None, timeout: float = 10.0) -> Any:
        """GET /_control/<what>, or POST it with a JSON body (faults, clock, reset)."""
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(
            f"{self.url}/_control/{what}",
            data=data,
            method="GET" if data is None else "POST",
            headers={"Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                return json.loads(resp.read())
        except OSError as exc:
            raise ServiceUnavailable(
                f"market replay server at {self.url} is unreachable ({exc})",
                "Start it with `rtfin local market start`.",
            ) from None


def from_settings(local: object, **overrides: Any) -> MarketServer:
    from rtfin_cli.settings import LocalSettings

    assert isinstance(local, LocalSettings)
    kw: dict[str, Any] = {
        "data_dir": Path(local.data_dir),
        "port": local.market_port,
        "speed": local.market_speed,
        "rate_limit": local.market_rate_limit,
    }
    kw.update({k: v for k, v in overrides.items() if v is not None})
    return MarketServer(**kw)
