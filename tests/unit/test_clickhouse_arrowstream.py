"""Joining the engine's per-chunk Arrow IPC streams into one (pyarrow writes and reads the streams)."""

from __future__ import annotations

import pytest

from rtfin_cli.local.clickhouse.arrowstream import END_OF_STREAM, joined
from rtfin_cli.local.clickhouse.errors import CHError

pa = pytest.importorskip("pyarrow")
ipc = pytest.importorskip("pyarrow.ipc")

pytestmark = pytest.mark.unit


def stream(table: object) -> bytes:
    sink = pa.BufferOutputStream()
    with ipc.new_stream(sink, table.schema) as writer:  # type: ignore[attr-defined]
        writer.write_table(table)
    return bytes(sink.getvalue())


def test_chunks_become_one_stream_with_every_row() -> None:
    parts = [stream(pa.table({"n": list(range(i, i + 10))})) for i in range(0, 50, 10)]
    body = b"".join(joined(iter(parts)))
    assert ipc.open_stream(body).read_all().column("n").to_pylist() == list(range(50))
    assert body.count(END_OF_STREAM) == 1 and body.endswith(END_OF_STREAM)


def test_chunks_with_another_schema_are_refused() -> None:
    parts = iter([stream(pa.table({"n": [1]})), stream(pa.table({"m": ["x"]}))])
    with pytest.raises(CHError, match="different schemas"):
        list(joined(parts))


def test_no_chunks_no_body() -> None:
    assert list(joined(iter([]))) == []
