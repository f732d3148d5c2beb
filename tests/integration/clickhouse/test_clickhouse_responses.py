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
