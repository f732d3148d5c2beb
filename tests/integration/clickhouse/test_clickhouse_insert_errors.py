"""Inserts that ClickHouse rejects while writing the block are errors, not a silent 200 (data loss).

chDB's streaming insert dropped such a block and still reported it written; the endpoint now inserts
through an ordinary query, which raises. clickhouse-connect, unmodified, against the real endpoint.
"""

from __future__ import annotations

import gzip
import json
import urllib.error
import urllib.request
from typing import Any

import pytest

clickhouse_connect = pytest.importorskip("clickhouse_connect")
from clickhouse_connect.driver.exceptions import DatabaseError  # noqa: E402


def _post(server: Any, query: str, body: bytes, headers: dict[str, str] | None = None) -> Any:
    from urllib.parse import urlencode

    url = f"http://{server.host}:{server.port}/?" + urlencode({"query": query})
    req = urllib.request.Request(url, data=body, method="POST", headers=headers or {})
    req.add_header("X-ClickHouse-User", server.user)
    req.add_header("X-ClickHouse-Key", server.password)
    return urllib.request.urlopen(req, timeout=30)


def test_check_constraint_violation_is_a_database_error_and_writes_nothing(client: Any, db: str) -> None:
    client.command(
        f"CREATE TABLE {db}.c (id UInt32, px Float64, CONSTRAINT positive CHECK px > 0)"
        " ENGINE = MergeTree ORDER BY id"
    )
    rows = [(i, float(i + 1)) for i in range(1000)] + [(1000, -1.0)]
    with pytest.raises(DatabaseError, match=r"Code: 469\..*VIOLATED_CONSTRAINT"):
        client.insert(f"{db}.c", rows, column_names=["id", "px"])
    assert client.command(f"SELECT count() FROM {db}.c") == 0
    # the server keeps serving, and the same connection inserts good rows afterwards
    summary = client.insert(f"{db}.c", rows[:-1], column_names=["id", "px"])
    assert summary.written_rows == 1000
    assert client.command(f"SELECT count() FROM {db}.c") == 1000


def test_check_violation_in_each_format_and_compression(clickhouse_server: Any, client: Any, db: str) -> None:
    client.command(f"CREATE TABLE {db}.f (k Int32, CONSTRAINT pos CHECK k > 0) ENGINE = MergeTree ORDER BY k")
    table = f"{db}.f"
    for compress in (None, "lz4", "zstd", "gzip"):
        c = clickhouse_connect.get_client(
            host=clickhouse_server.host, port=clickhouse_server.port, username=clickhouse_server.user,
            password=clickhouse_server.password, compress=compress or False,
        )  # fmt: skip
        try:
            with pytest.raises(DatabaseError, match="VIOLATED_CONSTRAINT"):
                c.insert(table, [(1,), (-2,)], column_names=["k"])
            with pytest.raises(DatabaseError, match="VIOLATED_CONSTRAINT"):
                c.insert_arrow(
                    table, __import__("pyarrow").table({"k": __import__("pyarrow").array([3, -4], "int32")})
                )
        finally:
            c.close()
    bodies = {
        "TSV": b"5\n-6\n", "CSV": b"5\n-6\n", "JSONEachRow": b'{"k":5}\n{"k":-6}\n', "Values": b"(5),(-6)",
    }  # fmt: skip
    for fmt, data in bodies.items():
        with pytest.raises(urllib.error.HTTPError) as err:
            _post(clickhouse_server, f"INSERT INTO {table} FORMAT {fmt}", data)
        assert err.value.code >= 400
        assert err.value.headers["X-ClickHouse-Exception-Code"] == "469"
        assert err.value.read().decode().startswith("Code: 469. DB::Exception: ")
    with pytest.raises(urllib.error.HTTPError) as err:  # gzip request body, SQL and data in the body
        _post(clickhouse_server, "", gzip.compress(f"INSERT INTO {table} FORMAT TSV\n7\n-8\n".encode()),
              {"Content-Encoding": "gzip"})  # fmt: skip
    assert err.value.headers["X-ClickHouse-Exception-Code"] == "469"
    assert client.command(f"SELECT count() FROM {table}") == 0


def test_too_many_partitions_is_a_database_error(client: Any, db: str) -> None:
    client.command(f"CREATE TABLE {db}.p (d UInt32, v String) ENGINE = MergeTree PARTITION BY d ORDER BY d")
    rows = [(i, "x") for i in range(20)]
    with pytest.raises(DatabaseError, match=r"Code: 252\..*TOO_MANY_PARTS|Too many partitions"):
        client.insert(
            f"{db}.p", rows, column_names=["d", "v"], settings={"max_partitions_per_insert_block": 5}
        )
    assert client.command(f"SELECT count() FROM {db}.p") == 0
    # the same limit as an INSERT ... SETTINGS clause (it must follow FROM INFILE in what the server runs)
    with pytest.raises(DatabaseError, match="Too many partitions"):
        client.command(
            f"INSERT INTO {db}.p (d, v) SETTINGS max_partitions_per_insert_block = 5 VALUES "
            + ",".join(f"({i}, 'y')" for i in range(20))
        )
    assert client.command(f"SELECT count() FROM {db}.p") == 0
    summary = client.insert(
        f"{db}.p", rows[:5], column_names=["d", "v"], settings={"max_partitions_per_insert_block": 5}
    )
    assert summary.written_rows == 5


def test_good_inserts_report_written_rows(clickhouse_server: Any, client: Any, db: str) -> None:
    client.command(f"CREATE TABLE {db}.g (id UInt64, s String) ENGINE = MergeTree ORDER BY id")
    for n in (1, 3000, 0):
        summary = client.insert(f"{db}.g", [(i, f"s{i}") for i in range(n)], column_names=["id", "s"])
        assert summary.written_rows == n
    # a block split into several (max_insert_block_size) still counts once per row
    rows = [(i, "b") for i in range(10_000)]
    summary = client.insert(
        f"{db}.g", rows, column_names=["id", "s"], settings={"max_insert_block_size": 1000}
    )
    assert summary.written_rows == 10_000
    summary = client.insert_arrow(
        f"{db}.g", __import__("pyarrow").table({"id": list(range(500)), "s": ["a"] * 500})
    )
    assert summary.written_rows == 500
    assert client.command(f"SELECT count() FROM {db}.g") == 1 + 3000 + 10_000 + 500
    with _post(
        clickhouse_server, f"INSERT INTO {db}.g FORMAT JSONEachRow", b'{"id":1,"s":"j"}\n{"id":2,"s":"k"}\n'
    ) as r:
        assert r.status == 200
        assert json.loads(r.headers["X-ClickHouse-Summary"])["written_rows"] == "2"
    with _post(
        clickhouse_server, "", f"INSERT INTO {db}.g VALUES (7, 'v'), (8, 'w'), (9, 'x')".encode()
    ) as r:
        assert json.loads(r.headers["X-ClickHouse-Summary"])["written_rows"] == "3"
    assert client.command(f"SELECT count() FROM {db}.g") == 13_506


def test_insert_select_from_input(clickhouse_server: Any, client: Any, db: str) -> None:
    client.command(
        f"CREATE TABLE {db}.i (id UInt64, s String, CONSTRAINT pos CHECK id > 0) ENGINE = MergeTree ORDER BY id"
    )
    query = (
        f"INSERT INTO {db}.i SELECT id * 10, upper(s) FROM input('id UInt64, s String') FORMAT JSONEachRow"
    )
    with _post(clickhouse_server, query, b'{"id":1,"s":"a"}\n{"id":2,"s":"b"}\n') as r:
        assert json.loads(r.headers["X-ClickHouse-Summary"])["written_rows"] == "2"
    assert client.query(f"SELECT id, s FROM {db}.i ORDER BY id").result_rows == [(10, "A"), (20, "B")]
    with _post(
        clickhouse_server, "", f'{query}\n{{"id":3,"s":"c"}}\n'.encode()
    ) as r:  # SQL + data in the body
        assert json.loads(r.headers["X-ClickHouse-Summary"])["written_rows"] == "1"
    with pytest.raises(urllib.error.HTTPError) as err:
        _post(clickhouse_server, query, b'{"id":0,"s":"zero"}\n')
    assert err.value.headers["X-ClickHouse-Exception-Code"] == "469"
    assert client.command(f"SELECT count() FROM {db}.i") == 3
