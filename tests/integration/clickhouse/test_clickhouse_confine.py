"""The endpoint confines its users like a ClickHouse server: files only under <data_dir>/clickhouse/user_files,
no network by default (a second endpoint started with loopback access reaches loopback only), no
INTO OUTFILE; each refusal carries ClickHouse's code and name, and nothing is read or fetched."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

pytestmark = pytest.mark.timeout(300)


class _Recorder(BaseHTTPRequestHandler):
    """A loopback HTTP server that counts the requests it gets and serves one CSV line."""

    hits: list[str] = []

    def do_GET(self) -> None:  # noqa: N802
        type(self).hits.append(self.path)
        body = b"fetched,1\n"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass


@pytest.fixture(scope="module")
def web() -> Iterator[str]:
    server = HTTPServer(("127.0.0.1", 0), _Recorder)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


@pytest.fixture(scope="module")
def loopback_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from rtfin_cli.local.clickhouse import ClickHouseServer
    from rtfin_cli.local.supervisor import free_port

    srv = ClickHouseServer(
        data_dir=tmp_path_factory.mktemp("ch_loop"), port=free_port(), loopback_network=True
    )
    srv.start(timeout=120)
    yield srv
    srv.stop()


def _post(srv: Any, sql: str) -> httpx.Response:
    user, password = srv.credentials()
    return httpx.post(srv.url, content=sql.encode(), auth=(user, password), timeout=60)


def _refused(resp: httpx.Response, code: int, name: str) -> None:
    assert resp.status_code == 500, resp.text
    assert resp.text.startswith(f"Code: {code}. DB::Exception: ") and f"({name})" in resp.text, resp.text
    assert resp.headers["X-ClickHouse-Exception-Code"] == str(code)


def test_files_outside_user_files_are_denied(clickhouse_server: Any) -> None:
    resp = _post(clickhouse_server, "SELECT * FROM file('/etc/passwd', 'LineAsString')")
    _refused(resp, 291, "DATABASE_ACCESS_DENIED")
    assert "root:" not in resp.text and "is not inside" in resp.text
    _refused(_post(clickhouse_server, "SELECT file('../password')"), 291, "DATABASE_ACCESS_DENIED")
    _refused(
        _post(clickhouse_server, "SELECT 1 INTO OUTFILE '/tmp/rtfin-outfile'"),
        358,
        "INTO_OUTFILE_NOT_ALLOWED",
    )
    assert not Path("/tmp/rtfin-outfile").exists()


def test_user_files_are_readable_and_writable_by_relative_path(clickhouse_server: Any) -> None:
    user_files = Path(clickhouse_server.data_dir) / "clickhouse" / "user_files"
    probe = user_files / "probe.csv"
    probe.write_text("a,1\nb,2\n")
    probe.chmod(0o600)  # as the owner's own files there would be (the data dir is owner-only)
    resp = _post(clickhouse_server, "SELECT sum(c2) FROM file('probe.csv', 'CSV')")
    assert resp.status_code == 200 and resp.text == "3\n", resp.text
    resp = _post(clickhouse_server, "INSERT INTO FUNCTION file('written.tsv', 'TSV', 'x UInt8') SELECT 7")
    assert resp.status_code == 200, resp.text
    assert (user_files / "written.tsv").read_text() == "7\n"  # relative paths land in user_files


def test_network_is_off_by_default(clickhouse_server: Any, web: str) -> None:
    before = len(_Recorder.hits)
    resp = _post(clickhouse_server, f"SELECT * FROM url('{web}/x.csv', 'CSV')")
    _refused(resp, 491, "UNACCEPTABLE_URL")
    assert "remote_url_allow_hosts" in resp.text
    _refused(
        _post(clickhouse_server, "SELECT * FROM remote('127.0.0.1:9000', system.one)"),
        491,
        "UNACCEPTABLE_URL",
    )
    assert len(_Recorder.hits) == before  # nothing was fetched


def test_loopback_setting_reaches_loopback_only(loopback_server: Any, web: str) -> None:
    before = len(_Recorder.hits)
    resp = _post(loopback_server, f"SELECT c1 FROM url('{web}/ok.csv', 'CSV')")
    assert resp.status_code == 200 and resp.text == "fetched\n", resp.text
    assert set(_Recorder.hits[before:]) == {"/ok.csv"}  # fetched (the engine may ask twice: schema, data)
    _refused(
        _post(loopback_server, "SELECT * FROM url('http://192.0.2.1/x.csv', 'CSV')"), 491, "UNACCEPTABLE_URL"
    )
    _refused(_post(loopback_server, "SELECT * FROM file('/etc/hostname')"), 291, "DATABASE_ACCESS_DENIED")


def test_values_data_cannot_call_file(clickhouse_server: Any) -> None:
    """VALUES data is evaluated by the engine: file() there is refused wherever the data comes from, while
    other expressions (now64(), as ClickHouse allows) still work in a body read whole."""
    table = f"confine_values_{uuid.uuid4().hex[:8]}"
    assert _post(clickhouse_server, f"CREATE TABLE {table} (s String) ENGINE = Memory").status_code == 200
    user, password = clickhouse_server.credentials()
    in_body = httpx.post(clickhouse_server.url, params={"query": f"INSERT INTO {table} VALUES"},
                         content=b"(file('/etc/hostname'))", auth=(user, password), timeout=60)  # fmt: skip
    assert in_body.status_code != 200
    inline = _post(clickhouse_server, f"INSERT INTO {table} VALUES (file('/etc/hostname'))")
    assert inline.status_code != 200
    assert _post(clickhouse_server, f"INSERT INTO {table} VALUES ('literal'), ('ok')").status_code == 200
    assert _post(clickhouse_server, f"INSERT INTO {table} VALUES (toString(now64(3)))").status_code == 200
    assert (
        _post(clickhouse_server, f"SELECT count() FROM {table}").text == "3\n"
    )  # nothing read from the host
    locked = _post(clickhouse_server, "SET input_format_values_interpret_expressions = 1")
    _refused(locked, 452, "SETTING_CONSTRAINT_VIOLATION")
