"""The HTTP protocol itself, with a plain HTTP client: errors as ClickHouse sends them, bad input,
compression, concurrency, sessions. After every bad request the server must keep serving."""

from __future__ import annotations

import gzip
import json
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest


@pytest.fixture()
def http(clickhouse_server: Any) -> Iterator[httpx.Client]:
    srv = clickhouse_server
    with httpx.Client(base_url=srv.url, auth=(srv.user, srv.password), timeout=60) as c:
        yield c


def _assert_serving(http: httpx.Client) -> None:
    r = http.get("/", params={"query": "SELECT 1"})
    assert (r.status_code, r.text) == (200, "1\n")


def _assert_ch_error(r: httpx.Response, status: int, code: int) -> None:
    assert r.status_code == status, r.text
    assert r.headers["X-ClickHouse-Exception-Code"] == str(code)
    assert r.text.startswith(f"Code: {code}. DB::Exception: ")
    assert "(version " in r.text


def test_ping_and_select_1(clickhouse_server: Any, http: httpx.Client) -> None:
    assert httpx.get(f"{clickhouse_server.url}/ping").text == "Ok.\n"  # no credentials needed
    r = http.post("/", content=b"SELECT 1 AS x FORMAT JSONEachRow")
    assert r.json() == {"x": 1}
    assert r.headers["X-ClickHouse-Format"] == "JSONEachRow"
    assert r.headers["X-ClickHouse-Query-Id"]
    assert json.loads(r.headers["X-ClickHouse-Summary"])["read_rows"] == "1"


def test_malformed_sql(http: httpx.Client) -> None:
    _assert_ch_error(http.post("/", content=b"SELEC 1"), 400, 62)
    _assert_ch_error(http.post("/", content=b""), 400, 62)
    _assert_serving(http)


def test_unknown_database(http: httpx.Client) -> None:
    _assert_ch_error(http.post("/", params={"database": "nope"}, content=b"SELECT 1"), 404, 81)
    _assert_ch_error(http.post("/", content=b"SELECT * FROM nope.t"), 404, 81)
    _assert_serving(http)


def test_wrong_or_missing_password_is_refused(clickhouse_server: Any, http: httpx.Client) -> None:
    url, user = clickhouse_server.url, clickhouse_server.user
    _assert_ch_error(httpx.post(url, auth=(user, "wrong"), content=b"SELECT 1"), 403, 516)
    _assert_ch_error(httpx.post(url, params={"user": user, "password": "x"}, content=b"SELECT 1"), 403, 516)
    _assert_ch_error(httpx.post(url, headers={"X-ClickHouse-User": "other"}, content=b"SELECT 1"), 401, 194)
    _assert_ch_error(httpx.post(url, content=b"SELECT 1"), 401, 194)
    headers = {"X-ClickHouse-User": user, "X-ClickHouse-Key": clickhouse_server.password}
    assert httpx.post(url, headers=headers, content=b"SELECT 3").text == "3\n"
    params = {"user": user, "password": clickhouse_server.password, "query": "SELECT 4"}
    assert httpx.get(url, params=params).text == "4\n"

    clickhouse_connect = pytest.importorskip("clickhouse_connect")
    from clickhouse_connect.driver.exceptions import DatabaseError

    with pytest.raises(DatabaseError, match="516|AUTHENTICATION_FAILED"):
        clickhouse_connect.get_client(
            host=clickhouse_server.host, port=clickhouse_server.port, username=user, password="wrong"
        )
    _assert_serving(http)


@pytest.fixture()
def table(http: httpx.Client) -> Iterator[str]:
    name = f"default.p_{uuid.uuid4().hex[:8]}"
    http.post("/", content=f"CREATE TABLE {name} (k UInt32, v String) ENGINE = MergeTree ORDER BY k".encode())
    yield name
    http.post("/", content=f"DROP TABLE {name}".encode())


def test_inserts_in_text_formats_with_summary(http: httpx.Client, table: str) -> None:
    r = http.post("/", params={"query": f"INSERT INTO {table} FORMAT TabSeparated"}, content=b"1\ta\n2\tb\n")
    assert r.status_code == 200, r.text
    assert json.loads(r.headers["X-ClickHouse-Summary"])["written_rows"] == "2"
    http.post("/", params={"query": f"INSERT INTO {table} FORMAT CSV"}, content=b'3,"c"\n')
    http.post("/", content=f'INSERT INTO {table} FORMAT JSONEachRow {{"k": 4, "v": "d"}}\n'.encode())
    http.post("/", content=f"INSERT INTO {table} VALUES (5, 'e'), (6, 'f')".encode())
    gz = gzip.compress(b"7\tg\n")
    r = http.post(
        "/",
        params={"query": f"INSERT INTO {table} FORMAT TSV"},
        content=gz,
        headers={"Content-Encoding": "gzip"},
    )
    assert r.status_code == 200, r.text
    chunked = iter([b"8\th", b"\n9\ti\n"])  # a generator body goes out with chunked transfer encoding
    r = http.post("/", params={"query": f"INSERT INTO {table} FORMAT TSV"}, content=chunked)
    assert r.status_code == 200, r.text
    r = http.post("/", content=f"SELECT groupArray(v) FROM (SELECT v FROM {table} ORDER BY k)".encode())
    assert r.text == "['a','b','c','d','e','f','g','h','i']\n"


def test_body_not_in_declared_format(http: httpx.Client, table: str) -> None:
    bad_json = http.post(
        "/", params={"query": f"INSERT INTO {table} FORMAT JSONEachRow"}, content=b"{not json"
    )
    assert bad_json.status_code in (400, 500) and bad_json.text.startswith("Code: ")
    bad_native = http.post("/", params={"query": f"INSERT INTO {table} FORMAT Native"}, content=b"\xff" * 64)
    assert bad_native.status_code in (400, 500) and bad_native.headers["X-ClickHouse-Exception-Code"]
    not_gzip = http.post(
        "/",
        params={"query": f"INSERT INTO {table} FORMAT TSV"},
        content=b"1\tx\n",
        headers={"Content-Encoding": "gzip"},
    )
    _assert_ch_error(not_gzip, 500, 271)
    unknown = http.post("/", params={"query": f"INSERT INTO {table} FORMAT TSV"}, content=b"1\tx\n",
                        headers={"Content-Encoding": "snappy-ish"})  # fmt: skip
    _assert_ch_error(unknown, 500, 638)
    assert (
        http.post("/", content=f"SELECT count() FROM {table}".encode()).text == "0\n"
    )  # nothing half-written
    _assert_serving(http)


def test_get_is_readonly(http: httpx.Client, table: str) -> None:
    _assert_ch_error(http.get("/", params={"query": f"INSERT INTO {table} VALUES (1, 'x')"}), 500, 164)
    _assert_ch_error(http.get("/", params={"query": f"DROP TABLE {table}"}), 500, 164)
    _assert_serving(http)


def test_settings_and_params_in_url(http: httpx.Client) -> None:
    r = http.post("/", params={"max_threads": "1", "query": "SELECT getSetting('max_threads')"})
    assert r.text == "1\n"
    _assert_ch_error(http.post("/", params={"no_such_setting": "1"}, content=b"SELECT 1"), 400, 115)
    r = http.post(
        "/", params={"param_x": "41", "param_s": "a\\tb"}, content=b"SELECT {x:UInt8} + 1, {s:String}"
    )
    assert r.text == "42\ta\\tb\n"
    r = http.post("/", params={"default_format": "JSONCompact"}, content=b"SELECT 1")
    assert r.json()["data"] == [[1]]


@pytest.mark.parametrize("encoding", ["gzip", "deflate", "zstd", "lz4"])
def test_compressed_responses(http: httpx.Client, encoding: str) -> None:
    import lz4.frame
    import zstandard

    sql = b"SELECT number FROM numbers(100000) FORMAT TSV"
    with http.stream(
        "POST",
        "/",
        params={"enable_http_compression": "1"},
        content=sql,
        headers={"Accept-Encoding": encoding},
    ) as r:
        assert r.headers["Content-Encoding"] == encoding
        raw = b"".join(r.iter_raw())
    decoders = {
        "gzip": gzip.decompress,
        "deflate": __import__("zlib").decompress,
        "zstd": lambda b: zstandard.ZstdDecompressor().decompressobj().decompress(b),
        "lz4": lz4.frame.decompress,
    }
    assert decoders[encoding](raw) == b"".join(b"%d\n" % i for i in range(100000))
    assert len(raw) < 588890  # compressed


def test_mid_stream_error_reaches_the_client(clickhouse_server: Any) -> None:
    clickhouse_connect = pytest.importorskip("clickhouse_connect")
    srv = clickhouse_server
    c = clickhouse_connect.get_client(host=srv.host, port=srv.port, username=srv.user, password=srv.password)
    from clickhouse_connect.driver.exceptions import ClickHouseError

    with pytest.raises(ClickHouseError, match="395|throwIf"):
        c.query("SELECT throwIf(number = 900000) FROM numbers(1000000) SETTINGS max_block_size = 10000")
    assert c.command("SELECT 5") == 5


def test_ping_and_queries_not_blocked_by_a_long_query(clickhouse_server: Any, http: httpx.Client) -> None:
    done = threading.Event()

    def long_query() -> None:
        http.post("/", content=b"SELECT sleep(2.5)")
        done.set()

    threading.Thread(target=long_query, daemon=True).start()
    time.sleep(0.3)
    t0 = time.monotonic()
    assert httpx.get(f"{clickhouse_server.url}/ping", timeout=5).text == "Ok.\n"
    with httpx.Client(
        base_url=clickhouse_server.url, auth=(clickhouse_server.user, clickhouse_server.password)
    ) as c2:
        assert c2.post("/", content=b"SELECT 7").text == "7\n"
    assert time.monotonic() - t0 < 1.5
    assert not done.is_set()
    assert done.wait(10)


def test_session_check_and_settings_persist(http: httpx.Client) -> None:
    sid = f"chk-{uuid.uuid4()}"
    _assert_ch_error(
        http.post("/", params={"session_id": sid, "session_check": "1"}, content=b"SELECT 1"), 500, 372
    )
    assert http.post("/", params={"session_id": sid}, content=b"SET max_threads = 2").status_code == 200
    r = http.post(
        "/", params={"session_id": sid, "session_check": "1"}, content=b"SELECT getSetting('max_threads')"
    )
    assert r.text == "2\n"
    # outside a session a SET does not outlive its request (the pooled connection is renewed)
    assert http.post("/", content=b"SET max_result_rows = 77").status_code == 200
    for _ in range(3):
        assert http.post("/", content=b"SELECT getSetting('max_result_rows')").text == "0\n"


def test_session_is_locked_while_in_use(http: httpx.Client) -> None:
    sid = f"lock-{uuid.uuid4()}"
    result: dict[str, httpx.Response] = {}

    def hold() -> None:
        result["a"] = http.post("/", params={"session_id": sid}, content=b"SELECT sleep(3)")

    t = threading.Thread(target=hold)
    t.start()
    time.sleep(1.0)
    t0 = time.monotonic()
    second = http.post("/", params={"session_id": sid}, content=b"SELECT 1")
    assert time.monotonic() - t0 < 1.5  # at once, as ClickHouse: no waiting for the session
    _assert_ch_error(second, 500, 373)
    t.join()
    assert result["a"].status_code == 200
    assert http.post("/", params={"session_id": sid}, content=b"SELECT 1").text == "1\n"


def test_a_session_query_sent_after_the_previous_answer_is_never_locked(http: httpx.Client) -> None:
    """Each request on a new TCP connection (another server thread): the client has the whole answer
    while the previous request may still be winding up; sequential queries must not get 373."""
    sid = f"seq-{uuid.uuid4()}"
    answers = [
        http.post(
            "/", params={"session_id": sid}, content=f"SELECT {i}".encode(), headers={"Connection": "close"}
        )
        for i in range(300)
    ]
    assert [(r.status_code, r.text) for r in answers] == [(200, f"{i}\n") for i in range(300)]


def test_database_parameter_does_not_stick_to_the_session(http: httpx.Client) -> None:
    sid, db = f"db-{uuid.uuid4()}", f"sdb_{uuid.uuid4().hex[:8]}"
    assert http.post("/", content=f"CREATE DATABASE {db}".encode()).status_code == 200
    try:
        assert http.post("/", params={"session_id": sid}, content=f"USE {db}".encode()).status_code == 200
        current = b"SELECT currentDatabase()"
        assert http.post("/", params={"session_id": sid}, content=current).text == f"{db}\n"
        r = http.post("/", params={"session_id": sid, "database": "system"}, content=current)
        assert r.text == "system\n"  # the parameter is this request's database ...
        assert http.post("/", params={"session_id": sid}, content=current).text == f"{db}\n"  # ... only
    finally:
        http.post("/", content=f"DROP DATABASE IF EXISTS {db}".encode())
