"""clickhouse-connect, unmodified, against the local endpoint (chDB behind the ClickHouse HTTP protocol)."""

from __future__ import annotations

import datetime as dt
import threading
import uuid
from typing import Any

import pytest

clickhouse_connect = pytest.importorskip("clickhouse_connect")


def test_server_identity_and_simple_query(client: Any) -> None:
    assert client.server_version.count(".") >= 2
    assert client.query("SELECT 1 AS one, 'a' AS s").result_rows == [(1, "a")]
    assert client.command("SELECT timezone()") == "UTC"  # like ClickHouse Cloud, whatever the host's TZ


def test_insert_100k_rows_and_read_back(client: Any, db: str) -> None:
    client.command(
        f"CREATE TABLE {db}.t (id UInt64, sym LowCardinality(String), px Float64, at DateTime64(3, 'UTC'),"
        " tags Array(String), note Nullable(String)) ENGINE = MergeTree ORDER BY id"
    )
    t0 = dt.datetime(2024, 1, 2, 3, 4, 5, 678000, tzinfo=dt.UTC)
    rows = [(i, f"S{i % 7}", i / 4, t0 + dt.timedelta(seconds=i), [f"x{i % 3}"], None if i % 2 else "n")
            for i in range(100_000)]  # fmt: skip
    summary = client.insert(f"{db}.t", rows, column_names=["id", "sym", "px", "at", "tags", "note"])
    assert summary.written_rows == 100_000
    assert client.query(f"SELECT count(), sum(id), uniqExact(sym) FROM {db}.t").result_rows == [
        (100_000, sum(range(100_000)), 7)
    ]
    first = client.query(f"SELECT * FROM {db}.t ORDER BY id LIMIT 2").result_rows
    assert first[0][:3] == (0, "S0", 0.0) and first[0][4:] == (["x0"], "n")
    assert first[0][3].replace(tzinfo=dt.UTC) == t0  # naive UTC, as against a UTC ClickHouse server
    assert first[1][5] is None


def test_insert_uncompressed_and_each_compression(clickhouse_server: Any, db: str, client: Any) -> None:
    client.command(f"CREATE TABLE {db}.c (k UInt32, v String) ENGINE = MergeTree ORDER BY k")
    for i, comp in enumerate([False, "lz4", "zstd", "gzip"]):
        c = clickhouse_connect.get_client(
            host=clickhouse_server.host, port=clickhouse_server.port, username=clickhouse_server.user,
            password=clickhouse_server.password, compress=comp,
        )  # fmt: skip
        c.insert(f"{db}.c", [(i * 1000 + j, f"v{j}") for j in range(1000)], column_names=["k", "v"])
        assert c.query(
            f"SELECT count() FROM {db}.c WHERE k >= {i * 1000} AND k < {(i + 1) * 1000}"
        ).result_rows == [(1000,)]
        c.close()


def test_query_df_and_parameters(client: Any) -> None:
    df = client.query_df("SELECT number AS n, toString(number) AS s FROM numbers(5)")
    assert list(df.columns) == ["n", "s"]
    assert df["n"].tolist() == [0, 1, 2, 3, 4]
    res = client.query(
        "SELECT {n:UInt32} + 1, {s:String}, {a:Array(String)}",
        parameters={"n": 41, "s": "it's \\ a\tb", "a": ["x", "y"]},
    )
    assert res.result_rows == [(42, "it's \\ a\tb", ["x", "y"])]
    # client-side binding (%(name)s) too
    assert client.query("SELECT %(v)s", parameters={"v": "q'uote"}).result_rows == [("q'uote",)]


def test_database_parameter(clickhouse_server: Any, db: str, client: Any) -> None:
    client.command(f"CREATE TABLE {db}.only_here (a UInt8) ENGINE = Memory")
    c = clickhouse_connect.get_client(
        host=clickhouse_server.host, port=clickhouse_server.port, username=clickhouse_server.user,
        password=clickhouse_server.password, database=db,
    )  # fmt: skip
    c.command("INSERT INTO only_here VALUES (7)")
    assert c.query("SELECT a, currentDatabase() FROM only_here").result_rows == [(7, db)]
    # a session-less client on the same pooled connections is back in `default`
    assert client.command("SELECT currentDatabase()") == "default"


def test_streaming_large_result(client: Any) -> None:
    total = blocks = 0
    with client.query_row_block_stream("SELECT number, toString(number) FROM numbers(1000000)") as stream:
        for block in stream:
            blocks += 1
            total += len(block)
    assert total == 1_000_000
    assert blocks > 1


def test_errors_are_database_errors_and_server_keeps_serving(client: Any) -> None:
    from clickhouse_connect.driver.exceptions import DatabaseError

    with pytest.raises(DatabaseError, match="Code: 62"):
        client.query("SELEC 1")
    with pytest.raises(DatabaseError, match="UNKNOWN_DATABASE|Code: 81"):
        client.query("SELECT * FROM no_such_db.t")
    with pytest.raises(DatabaseError, match="Code: 395"):
        client.query("SELECT throwIf(number = 3) FROM numbers(10)")
    assert client.query("SELECT 2").result_rows == [(2,)]


def test_session_temporary_table_and_settings(clickhouse_server: Any) -> None:
    c = clickhouse_connect.get_client(
        host=clickhouse_server.host, port=clickhouse_server.port, username=clickhouse_server.user,
        password=clickhouse_server.password, session_id=f"s-{uuid.uuid4()}",
    )  # fmt: skip
    c.command("CREATE TEMPORARY TABLE tmp_x (a UInt8)")
    c.command("INSERT INTO tmp_x VALUES (1), (2)")
    c.command("SET max_threads = 3")
    assert c.query("SELECT count() FROM tmp_x").result_rows == [(2,)]
    assert c.command("SELECT getSetting('max_threads')") == 3
    other = clickhouse_connect.get_client(
        host=clickhouse_server.host, port=clickhouse_server.port, username=clickhouse_server.user,
        password=clickhouse_server.password, session_id=f"s-{uuid.uuid4()}",
    )  # fmt: skip
    from clickhouse_connect.driver.exceptions import DatabaseError

    with pytest.raises(DatabaseError):
        other.query("SELECT count() FROM tmp_x")


def test_concurrent_clients(clickhouse_server: Any) -> None:
    errors: list[BaseException] = []
    results: list[int] = []

    def work(i: int) -> None:
        try:
            c = clickhouse_connect.get_client(
                host=clickhouse_server.host, port=clickhouse_server.port, username=clickhouse_server.user,
                password=clickhouse_server.password,
            )  # fmt: skip
            for _ in range(5):
                results.append(int(c.command(f"SELECT sum(number) FROM numbers({1000 + i})")))
            c.close()
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors
    assert sorted(results) == sorted(sum(range(1000 + i)) for i in range(6) for _ in range(5))


def test_empty_result_has_no_columns_as_from_clickhouse(client: Any) -> None:
    # ClickHouse sends no Native block for an empty result (ClickHouse/ClickHouse#55939), so the client
    # knows no columns; its SQLAlchemy dialect asks for them separately (test_clickhouse_sqlalchemy)
    res = client.query("SELECT 1 AS a, 'x' AS b WHERE 0")
    assert res.result_rows == [] and res.column_names == ()


def test_arrow_and_whole_document_formats(client: Any) -> None:
    table = client.query_arrow("SELECT number AS n, toString(number) AS s FROM numbers(300000)")
    assert table.num_rows == 300_000 and table.column_names == ["n", "s"]
    doc = client.raw_query("SELECT number FROM numbers(100000) FORMAT JSON")
    import json

    assert json.loads(doc)["rows"] == 100_000


def test_form_encoded_parameters(clickhouse_server: Any) -> None:
    c = clickhouse_connect.get_client(
        host=clickhouse_server.host, port=clickhouse_server.port, username=clickhouse_server.user,
        password=clickhouse_server.password, form_encode_query_params=True,
    )  # fmt: skip
    many = [f"T{i}" for i in range(5000)]  # large parameters go in a multipart body
    res = c.query("SELECT length({xs:Array(String)}), {n:UInt8}", parameters={"xs": many, "n": 7})
    assert res.result_rows == [(5000, 7)]
    c.close()
