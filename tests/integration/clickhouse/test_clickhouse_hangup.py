"""Clients that hang up mid-stream never poison the endpoint's engine.

Own endpoint (its log is read): 100 raw-socket clients send a 5-million-row streaming SELECT and close
their socket after a random number of bytes (some with an RST), interleaved with normal clickhouse-connect
queries and inserts. Every normal request succeeds, every inserted row is there, each hang-up is one log
line (no traceback, nothing `rtfin local status` would show as an error) and the engine still answers.
"""

from __future__ import annotations

import base64
import random
import socket
import struct
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.integration

HANGUPS = 100
INSERTS = 50
SELECTS = 50
ROWS_PER_INSERT = 200
STREAM_SQL = "SELECT number FROM system.numbers LIMIT 5000000 FORMAT {fmt}"


@pytest.fixture()
def endpoint(tmp_path: Path) -> Iterator[Any]:
    from rtfin_cli.local.clickhouse import ClickHouseServer
    from rtfin_cli.local.supervisor import free_port

    server = ClickHouseServer(data_dir=tmp_path, port=free_port())
    server.password = server.credentials()[1]
    server.start(timeout=120)
    try:
        yield server
    finally:
        server.stop()


def hang_up(server: Any, after: int, fmt: str, reset: bool, session: str = "") -> int:
    """Send a big streaming SELECT, read ``after`` bytes of the response, close; returns bytes read."""
    auth = base64.b64encode(f"{server.user}:{server.password}".encode())
    sql = STREAM_SQL.format(fmt=fmt).encode()
    path = f"/?session_id={session}".encode() if session else b"/"
    with socket.create_connection((server.host, server.port), timeout=30) as sock:
        sock.sendall(b"POST %s HTTP/1.1\r\nHost: x\r\nAuthorization: Basic %s\r\nContent-Length: %d\r\n\r\n%s"
                     % (path, auth, len(sql), sql))  # fmt: skip
        got = 0
        while got < after:
            data = sock.recv(min(65536, after - got))
            if not data:
                break
            got += len(data)
        if reset:  # an abortive close (RST), as a killed client leaves it
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    return got


def test_hangups_mid_stream_leave_the_engine_healthy(endpoint: Any) -> None:
    import clickhouse_connect

    from rtfin_cli.stack.state import last_error

    local = threading.local()

    def client() -> Any:
        if not hasattr(local, "client"):
            local.client = clickhouse_connect.get_client(
                host=endpoint.host, port=endpoint.port, username=endpoint.user, password=endpoint.password
            )
        return local.client

    client().command("CREATE TABLE hangup_t (id UInt64, batch UInt32) ENGINE = MergeTree ORDER BY id")
    rng = random.Random(21)
    tasks: list[tuple[str, int]] = [("hangup", i) for i in range(HANGUPS)]
    tasks += [("insert", i) for i in range(INSERTS)] + [("select", i) for i in range(SELECTS)]
    rng.shuffle(tasks)
    points = [rng.choice([0, 1, 2048, rng.randrange(1, 256 << 10)]) for _ in range(HANGUPS)]
    formats = [rng.choice(["TabSeparated", "Native", "RowBinary", "JSONEachRow"]) for _ in range(HANGUPS)]

    def run(task: tuple[str, int]) -> str:
        kind, i = task
        if kind == "hangup":
            hang_up(endpoint, points[i], formats[i], reset=i % 3 == 0)
            return "hangup"
        if kind == "insert":
            rows = [[i * ROWS_PER_INSERT + j, i] for j in range(ROWS_PER_INSERT)]
            client().insert("hangup_t", rows, column_names=["id", "batch"])
            return "insert"
        n = rng.randrange(1, 100_000)
        got = client().query(f"SELECT count(), sum(number) FROM numbers({n})").result_rows[0]
        assert tuple(got) == (n, n * (n - 1) // 2)
        return "select"

    failures: list[BaseException] = []
    done: dict[str, int] = {"hangup": 0, "insert": 0, "select": 0}
    with ThreadPoolExecutor(max_workers=8) as pool:
        for fut in [pool.submit(run, t) for t in tasks]:
            try:
                done[fut.result(timeout=120)] += 1
            except Exception as exc:  # noqa: BLE001 - counted, then reported
                failures.append(exc)

    assert failures == [], f"{len(failures)} normal requests failed, first: {failures[0]!r}"
    assert done == {"hangup": HANGUPS, "insert": INSERTS, "select": SELECTS}
    count, total = client().query("SELECT count(), sum(id) FROM hangup_t").result_rows[0]
    n = INSERTS * ROWS_PER_INSERT
    assert (count, total) == (n, n * (n - 1) // 2)
    assert endpoint.healthy() and endpoint.status().running

    log = endpoint.status().log.read_text()
    assert "Traceback" not in log and "fatal" not in log.lower()
    assert log.count("client hung up") == HANGUPS  # one line each: every one was cut mid-stream
    assert last_error(endpoint.status().log) == ""


def test_a_session_left_mid_stream_serves_its_next_query(endpoint: Any) -> None:
    import httpx

    with httpx.Client(base_url=endpoint.url, auth=(endpoint.user, endpoint.password), timeout=30) as http:
        for i in range(10):
            sid = f"hangup-{i}"
            http.post("/", params={"session_id": sid}, content=b"SET max_threads = 1")
            hang_up(endpoint, 2048 * (i + 1), "TabSeparated", reset=i % 2 == 0, session=sid)
            deadline = time.monotonic() + 10
            while True:  # the cancel may still hold the session for a moment: 373, as on ClickHouse
                r = http.post("/", params={"session_id": sid}, content=b"SELECT getSetting('max_threads')")
                if r.status_code == 200 or time.monotonic() > deadline:
                    break
                assert r.headers["X-ClickHouse-Exception-Code"] == "373", r.text
                time.sleep(0.05)
            assert (r.status_code, r.text) == (200, "1\n")  # the session and its settings survived
    assert endpoint.healthy()


def test_a_client_that_hangs_up_while_sending_an_insert(endpoint: Any) -> None:
    import clickhouse_connect

    from rtfin_cli.stack.state import last_error

    client = clickhouse_connect.get_client(
        host=endpoint.host, port=endpoint.port, username=endpoint.user, password=endpoint.password
    )
    client.command("CREATE TABLE cut_t (id UInt64) ENGINE = MergeTree ORDER BY id")
    auth = base64.b64encode(f"{endpoint.user}:{endpoint.password}".encode())
    head = (b"POST /?query=INSERT%%20INTO%%20cut_t%%20FORMAT%%20TSV HTTP/1.1\r\nHost: x\r\n"
            b"Authorization: Basic %s\r\nContent-Length: %d\r\n\r\n" % (auth, 1 << 20))  # fmt: skip
    for half_close in (False, True):
        with socket.create_connection((endpoint.host, endpoint.port), timeout=30) as sock:
            sock.sendall(head + b"1\n" * 512)  # 1 KiB of the 1 MiB announced
            if half_close:  # still listening: gets ClickHouse's CANNOT_READ_ALL_DATA
                sock.shutdown(socket.SHUT_WR)
                answer = sock.recv(65536)
                assert answer.startswith(b"HTTP/1.1 400") and b"X-ClickHouse-Exception-Code: 33" in answer
    assert client.query("SELECT count() FROM cut_t").result_rows == [(0,)]  # nothing of a cut body kept
    log = endpoint.status().log.read_text()
    assert log.count("(request body cut short)") == 2 and "Traceback" not in log
    assert last_error(endpoint.status().log) == ""
    client.close()
