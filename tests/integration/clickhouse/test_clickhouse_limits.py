"""A second endpoint with small limits: oversized requests are refused ClickHouse-style; data persists over
a stop/start; SIGTERM stops it cleanly."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest


@pytest.fixture(scope="module")
def small_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from rtfin_cli.local.clickhouse import ClickHouseServer
    from rtfin_cli.local.supervisor import free_port

    srv = ClickHouseServer(
        data_dir=tmp_path_factory.mktemp("ch_small"), port=free_port(), max_body_mb=2, max_query_mb=1
    )
    srv.start(timeout=120)
    yield srv
    srv.stop()


def _client(srv: Any) -> httpx.Client:
    user, password = srv.credentials()
    return httpx.Client(base_url=srv.url, auth=(user, password), timeout=60)


def test_oversized_requests_are_refused(small_server: Any) -> None:
    with _client(small_server) as http:
        http.post("/", content=b"CREATE TABLE big (s String) ENGINE = MergeTree ORDER BY s")
        huge_sql = b"SELECT '" + b"x" * (3 << 19) + b"'"
        r = http.post("/", content=huge_sql)
        assert r.status_code == 413 and r.text.startswith("Code: 62. DB::Exception: Max query size exceeded")
        big_body = b"y" * 1000 + b"\n"
        r = http.post("/", params={"query": "INSERT INTO big FORMAT TSV"}, content=big_body * 2200)
        assert r.status_code == 413
        assert r.headers["X-ClickHouse-Exception-Code"] and "server limit" in r.text
        chunked = (big_body * 100 for _ in range(30))  # ~3 MB, chunked, no Content-Length
        r = http.post("/", params={"query": "INSERT INTO big FORMAT TSV"}, content=chunked)
        assert r.status_code == 413
        assert http.post("/", content=b"SELECT count() FROM big").text == "0\n"
    with _client(small_server) as http:  # a fresh connection: the server keeps serving
        assert http.get("/", params={"query": "SELECT 1"}).text == "1\n"


def test_data_survives_restart_and_password_is_private(small_server: Any) -> None:
    with _client(small_server) as http:
        http.post("/", content=b"CREATE TABLE keep (a UInt8) ENGINE = MergeTree ORDER BY a")
        http.post("/", content=b"INSERT INTO keep VALUES (1), (2), (3)")
    assert small_server.stop()
    assert not small_server.status().running
    log = Path(small_server.service.log_file).read_text()
    assert "stopped" in log
    assert small_server.credentials()[1] not in log
    small_server.start(timeout=120)
    with _client(small_server) as http:
        assert http.post("/", content=b"SELECT sum(a) FROM keep").text == "6\n"
    mode = (small_server.home / "password").stat().st_mode & 0o777
    assert mode == 0o600


def test_second_start_reports_the_running_one(small_server: Any) -> None:
    from rtfin_cli.errors import ProcessError

    with pytest.raises(ProcessError, match="already running"):
        small_server.start()
