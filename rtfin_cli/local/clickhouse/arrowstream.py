"""One Arrow IPC stream out of the engine's streamed ArrowStream chunks.

Each chunk chDB streams in ``ArrowStream`` is a complete IPC stream: the schema message, record batches
and the end-of-stream marker. Sent back to back, a client reads the first chunk's rows and stops at its
end marker. ClickHouse sends one stream: the schema once, every batch, one end marker. Framing (Arrow
columnar format, "Encapsulated message format" and "IPC Streaming Format"): each message is the
continuation marker 0xFFFFFFFF, an int32 metadata length, the metadata (padded), then the body; the
schema message has no body; the end of stream is the marker followed by a zero length.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator

from rtfin_cli.local.clickhouse.errors import CHError

CONTINUATION = b"\xff\xff\xff\xff"
END_OF_STREAM = CONTINUATION + b"\x00\x00\x00\x00"


def schema_message(chunk: bytes) -> bytes:
    """The leading schema message of an IPC stream (the continuation marker, the length, the metadata)."""
    if len(chunk) < 8 or not chunk.startswith(CONTINUATION):
        raise CHError("UNKNOWN_EXCEPTION", "ArrowStream chunk does not start with an IPC message")
    (length,) = struct.unpack_from("<i", chunk, 4)
    return chunk[: 8 + length]


def joined(chunks: Iterator[bytes | memoryview]) -> Iterator[bytes]:
    """The chunks as one stream: the first chunk's schema, every chunk's batches, one end marker."""
    schema: bytes | None = None
    for part in chunks:
        chunk = bytes(part)
        if not chunk:
            continue
        if chunk.endswith(END_OF_STREAM):
            chunk = chunk[: -len(END_OF_STREAM)]
        if schema is None:
            schema = schema_message(chunk)
        elif chunk.startswith(schema):
            chunk = chunk[len(schema) :]
        else:
            raise CHError("UNKNOWN_EXCEPTION", "ArrowStream chunks of one result carry different schemas")
        if chunk:
            yield chunk
    if schema is not None:
        yield END_OF_STREAM
