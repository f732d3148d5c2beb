"""Responses as ClickHouse's HTTP interface sends them, read through unmodified clients (clickhouse-connect
sync and async, pyarrow) or raw HTTP where no client exposes the detail."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

pytestmark = pytest.mark.integration


@pytest.fixture()
def http(clickhouse_server: Any) -> Iterator[httpx.Client]:
    srv = clickhouse_server
    with httpx.Client(base_url=srv.url, auth=(srv.user, srv.password), timeout=60) as c:
        yield c


# -- ArrowStream: one stream across the engine's chunks -------------------------------------------------
ARROW_SQL = "SELECT number AS n, toString(number) AS s FROM numbers(500)"


def test_arrow_stream_through_clickhouse_connect_reads_every_row(client: Any) -> None:
    settings = {"max_block_size": 50}  # 10 blocks: the engine streams each as its own chunk
    with client.query_arrow_stream(ARROW_SQL, settings=settings) as stream:
        batches = list(stream)
    assert sum(b.num_rows for b in batches) == 500
    assert [v for b in batches for v in b.column("n").to_pylist()] == list(range(500))


def test_arrow_stream_is_one_ipc_stream(http: httpx.Client) -> None:
    import pyarrow.ipc

    for rows in (0, 500, 300_000):
        r = http.post("/", params={"max_block_size": "50" if rows == 500 else "65536"},
                      content=f"SELECT number AS n FROM numbers({rows}) FORMAT ArrowStream")  # fmt: skip
        assert r.status_code == 200, r.text
        table = pyarrow.ipc.open_stream(r.content).read_all()
        assert table.num_rows == rows and table.column_names == ["n"]
        assert r.content.count(b"\xff\xff\xff\xff\x00\x00\x00\x00") == 1  # one end-of-stream marker


def test_arrow_stream_through_the_async_client(clickhouse_server: Any) -> None:
    import clickhouse_connect

    async def main() -> int:
        c = await clickhouse_connect.get_async_client(
            host=clickhouse_server.host, port=clickhouse_server.port,
            username=clickhouse_server.user, password=clickhouse_server.password,
        )  # fmt: skip
        try:
            stream = await c.query_arrow_stream(ARROW_SQL, settings={"max_block_size": 50})
            total = 0
            async with stream:
                async for batch in stream:
                    total += batch.num_rows
            return total
        finally:
            await c.close()

    assert asyncio.run(main()) == 500


# -- X-ClickHouse-Format: only for statements with a result set ------------------------------------------
def test_ddl_and_set_have_no_format_header(client: Any, http: httpx.Client, db: str) -> None:
    from clickhouse_connect.driver.summary import QuerySummary

    for sql in (f"CREATE TABLE {db}.f (a UInt8) ENGINE = MergeTree ORDER BY a", "SET max_threads = 1",
                f"ALTER TABLE {db}.f ADD COLUMN b UInt8", f"DROP TABLE {db}.f"):  # fmt: skip
        r = http.post("/", content=sql)
        assert r.status_code == 200 and "X-ClickHouse-Format" not in r.headers, sql
    assert isinstance(client.command(f"CREATE TABLE {db}.g (a UInt8) ENGINE = Memory"), QuerySummary)
    assert isinstance(client.command("SET max_threads = 2"), QuerySummary)
    assert client.command("SELECT 1 WHERE 0") == ""  # an empty result set still names its format
    for sql in ("SELECT 1 WHERE 0", f"SHOW TABLES FROM {db} LIKE 'none'", f"EXISTS TABLE {db}.g"):
        assert http.post("/", content=sql).headers["X-ClickHouse-Format"] == "TabSeparated", sql


def test_ddl_through_the_async_client_returns_a_summary(clickhouse_server: Any, db: str) -> None:
    import clickhouse_connect
    from clickhouse_connect.driver.summary import QuerySummary

    async def main() -> tuple[Any, Any]:
        c = await clickhouse_connect.get_async_client(
            host=clickhouse_server.host, port=clickhouse_server.port,
            username=clickhouse_server.user, password=clickhouse_server.password,
        )  # fmt: skip
        try:
            created = await c.command(f"CREATE TABLE {db}.a (x UInt8) ENGINE = Memory")
            return created, await c.command("SELECT 1 WHERE 0")
        finally:
            await c.close()

    created, empty = asyncio.run(main())
    assert isinstance(created, QuerySummary) and empty == ""


def test_request_format_header_is_the_default_format(http: httpx.Client) -> None:
    r = http.post("/", content="SELECT 1 AS x", headers={"X-ClickHouse-Format": "JSONEachRow"})
    assert r.json() == {"x": 1} and r.headers["X-ClickHouse-Format"] == "JSONEachRow"


# -- empty Native results: no block at all, as ClickHouse sends them --------------------------------------
def test_empty_native_result_is_an_empty_body(client: Any, http: httpx.Client) -> None:
    # ClickHouse sends no block for an empty Native result (ClickHouse/ClickHouse#55939)
    for sql in ("SELECT 1 AS a, 'x' AS b WHERE 0", "SELECT * FROM system.tables WHERE 0"):
        r = http.post("/", content=f"{sql} FORMAT Native")
        assert (r.status_code, r.content, r.headers["X-ClickHouse-Format"]) == (200, b"", "Native"), r.text
        assert client.query(sql).result_rows == []
    assert len(client.query("SELECT * FROM system.tables").result_rows) > 0


# -- WITH ... INSERT ... FORMAT X with inline data --------------------------------------------------------
def test_with_insert_inline_data_is_an_insert(client: Any, http: httpx.Client, db: str) -> None:
    client.command(f"CREATE TABLE {db}.w (a UInt32) ENGINE = MergeTree ORDER BY a")
    r = http.post("/", content=f"WITH 5 AS x INSERT INTO {db}.w FORMAT TSV\n1\n2\n")
    assert r.status_code == 200, r.text
    assert '"written_rows":"2"' in r.headers["X-ClickHouse-Summary"]
    r = http.post(
        "/", params={"query": f"WITH (SELECT 1) AS y INSERT INTO {db}.w FORMAT CSV"}, content=b"3\n"
    )
    assert r.status_code == 200, r.text
    client.command(f"WITH 5 AS x INSERT INTO {db}.w FORMAT TSV\n4\n")
    client.command(f"WITH 5 AS x INSERT INTO {db}.w SELECT x")
    assert [row[0] for row in client.query(f"SELECT a FROM {db}.w ORDER BY a").result_rows] == [1, 2, 3, 4, 5]
    r = http.get("/", params={"query": f"WITH 5 AS x INSERT INTO {db}.w SELECT x"})
    assert r.headers["X-ClickHouse-Exception-Code"] == "164"  # READONLY: GET never inserts


# -- one statement per request ---------------------------------------------------------------------------
def test_multi_statements_are_refused(http: httpx.Client, client: Any, db: str) -> None:
    r = http.post("/", content=b"SET max_threads = 1; SELECT 1")
    assert (r.status_code, r.headers["X-ClickHouse-Exception-Code"]) == (400, "62"), r.text
    assert "Multi-statements are not allowed" in r.text
    for ok in (b"SELECT 1;", b"SELECT 1; -- done", b"SELECT ';' AS x; ;"):
        assert http.post("/", content=ok).status_code == 200, ok
    client.command(f"CREATE TABLE {db}.m (s String) ENGINE = Memory")
    r = http.post("/", content=f"INSERT INTO {db}.m FORMAT TSV\na;b\nc; SELECT 1\n".encode())
    assert r.status_code == 200, r.text  # a ';' in INSERT data is data
    assert client.query(f"SELECT count() FROM {db}.m").result_rows == [(2,)]


# -- external data: the form's file parts are temporary tables for the query ------------------------------
def test_external_data_through_clickhouse_connect(client: Any) -> None:
    from clickhouse_connect.driver.external import ExternalData

    ext = ExternalData(
        file_name="ext.csv", data=b"1,a\n2,b\n3,c\n", fmt="CSV", structure=["id UInt32", "s String"]
    )
    ext.add_file(file_name="typed", data=b"10\n20\n", types="UInt64")
    res = client.query("SELECT sum(id), arrayStringConcat(groupArray(s)) FROM ext", external_data=ext)
    assert res.result_rows == [(6, "abc")]
    assert client.query("SELECT sum(_1) FROM typed", external_data=ext).result_rows == [(30,)]
    with pytest.raises(Exception, match="UNKNOWN_TABLE|Unknown table"):
        client.query("SELECT * FROM ext")  # gone after its query


def test_external_data_without_structure_is_refused(http: httpx.Client) -> None:
    files = {"t": ("t.tsv", b"1\n", "application/octet-stream")}
    r = http.post("/", params={"query": "SELECT * FROM t"}, files=files)
    assert (r.status_code, r.headers["X-ClickHouse-Exception-Code"]) == (400, "36"), r.text
    assert "t_structure or t_types" in r.text
    r = http.post("/", params={"query": "SELECT count() FROM t", "t_types": "UInt8"}, files=files)
    assert (r.status_code, r.text) == (200, "1\n")


def test_external_table_structure_is_confined_like_sql(http: httpx.Client) -> None:
    files = {"t": ("t.tsv", b"1\n", "application/octet-stream")}
    params = {"query": "SELECT a FROM t", "t_structure": "x UInt8, a String DEFAULT file('/etc/passwd')"}
    r = http.post("/", params=params, files=files)
    assert r.status_code != 200 and "root:" not in r.text
    assert r.headers["X-ClickHouse-Exception-Code"] == "291", r.text  # DATABASE_ACCESS_DENIED, as for SQL
