"""Request/response body codecs: HTTP chunked transfer decoding and Content-Encoding (gzip, deflate, zstd,
lz4 frame, br) in both directions, all streaming."""

from __future__ import annotations

import io
import zlib
from collections.abc import Iterator
from typing import Any, BinaryIO, Protocol

from rtfin_cli.local.clickhouse.errors import CHError

READ_SIZE = 1 << 20
# Response encodings in our order of preference when a client accepts several.
ENCODINGS = ("lz4", "zstd", "gzip", "deflate", "br")


class BodyEndedEarly(ConnectionResetError):
    """The request body ended before its declared length: the client hung up while sending it."""


class Decoder(Protocol):
    def decompress(self, data: bytes) -> bytes: ...


def raw_body(
    rfile: BinaryIO | io.BufferedIOBase, length: int | None, chunked: bool, limit: int
) -> Iterator[bytes]:
    """The request body as it came over the wire (chunked transfer decoded), at most ``limit`` bytes."""
    total = 0

    def count(n: int) -> None:
        nonlocal total
        total += n
        if total > limit:
            raise CHError(
                "TOO_LARGE_REQUEST_BODY",
                f"Request body exceeds the server limit of {limit} bytes (start the server with a larger "
                "--max-body-mb, or split the insert into smaller batches)",
                status=413,
            )

    if chunked:
        while True:
            line = rfile.readline(65537)
            try:
                size = int(line.split(b";", 1)[0].strip(), 16)
            except ValueError:
                raise CHError("UNKNOWN_EXCEPTION", "Malformed chunked request body", status=400) from None
            if size == 0:
                while rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                return
            count(size)
            remaining = size
            while remaining:
                data = rfile.read(min(remaining, READ_SIZE))
                if not data:
                    raise BodyEndedEarly("Request body ended early: the client closed its connection")
                remaining -= len(data)
                yield data
            rfile.readline(3)
    elif length:
        count(length)
        remaining = length
        while remaining:
            data = rfile.read(min(remaining, READ_SIZE))
            if not data:
                raise BodyEndedEarly("Request body ended early: the client closed its connection")
            remaining -= len(data)
            yield data


def decoder(encoding: str) -> Decoder | None:
    """A streaming decompressor for a Content-Encoding value (None for identity)."""
    enc = encoding.strip().lower()
    if enc in ("", "identity", "none"):
        return None
    if enc in ("gzip", "x-gzip"):
        return _Frames(lambda: zlib.decompressobj(wbits=47))  # gzip members back to back
    if enc == "deflate":
        return _Frames(zlib.decompressobj)
    if enc == "zstd":
        import zstandard

        return zstandard.ZstdDecompressor().decompressobj(read_across_frames=True)  # type: ignore[no-any-return]
    if enc == "lz4":
        import lz4.frame

        return _Frames(lz4.frame.LZ4FrameDecompressor)
    if enc == "br":
        try:
            import brotli  # type: ignore[import-not-found]
        except ImportError:
            raise CHError(
                "UNKNOWN_COMPRESSION_METHOD", "br (brotli) is not installed on this server"
            ) from None
        return brotli.Decompressor()  # type: ignore[no-any-return]
    raise CHError(
        "UNKNOWN_COMPRESSION_METHOD",
        f"Unknown Content-Encoding '{encoding}' (supported: {', '.join(ENCODINGS)})",
    )


class _Frames:
    """Compressed frames back to back (clickhouse-connect compresses each insert block as its own frame)."""

    def __init__(self, new: Any) -> None:
        self._new = new
        self._dec = new()

    def decompress(self, data: bytes) -> bytes:
        out = []
        while data:
            out.append(self._dec.decompress(data))
            if self._dec.eof:
                data = self._dec.unused_data
                self._dec = self._new()
            else:
                data = b""
        return b"".join(out)


def decoded(chunks: Iterator[bytes], encoding: str, limit: int) -> Iterator[bytes]:
    """Decompress a body stream; the decompressed size is limited too (a zip bomb is just a big body)."""
    dec = decoder(encoding)
    if dec is None:
        yield from chunks
        return
    total = 0
    for chunk in chunks:
        try:
            out = dec.decompress(chunk)
        except CHError:
            raise
        except Exception as exc:  # noqa: BLE001
            raise CHError(
                "CANNOT_DECOMPRESS", f"Cannot decompress the {encoding} request body: {exc}"
            ) from None
        total += len(out)
        if total > limit:
            raise CHError(
                "TOO_LARGE_REQUEST_BODY",
                f"Decompressed request body exceeds the server limit of {limit} bytes",
                status=413,
            )
        if out:
            yield out


class Encoder:
    """A streaming compressor for the response body."""

    def __init__(self, encoding: str) -> None:
        self.encoding = encoding
        self._obj: Any
        if encoding == "gzip":
            self._obj = zlib.compressobj(1, zlib.DEFLATED, 31)
        elif encoding == "deflate":
            self._obj = zlib.compressobj(1)
        elif encoding == "zstd":
            import zstandard

            self._obj = zstandard.ZstdCompressor(level=1).compressobj()
        elif encoding == "lz4":
            import lz4.frame

            self._obj = lz4.frame.LZ4FrameCompressor()
            self._started = False
        elif encoding == "br":
            import brotli

            self._obj = brotli.Compressor(quality=1)
        else:
            raise ValueError(encoding)

    def compress(self, data: bytes | memoryview) -> bytes:
        if self.encoding == "lz4":
            head = b"" if self._started else self._obj.begin()
            self._started = True
            return head + self._obj.compress(data)  # type: ignore[no-any-return]
        if self.encoding == "br":
            return self._obj.process(data)  # type: ignore[no-any-return]
        return self._obj.compress(data)  # type: ignore[no-any-return]

    def flush(self) -> bytes:
        if self.encoding == "lz4":
            head = b"" if self._started else self._obj.begin()
            return head + self._obj.flush()  # type: ignore[no-any-return]
        if self.encoding == "br":
            return self._obj.finish()  # type: ignore[no-any-return]
        return self._obj.flush()  # type: ignore[no-any-return]


def choose_encoding(accept: str) -> str | None:
    """The first encoding in the client's Accept-Encoding we can produce (brotli only if installed)."""
    for item in accept.split(","):
        enc = item.split(";", 1)[0].strip().lower()
        if enc == "br":
            try:
                import brotli  # noqa: F401
            except ImportError:
                continue
        if enc in ENCODINGS:
            return enc
    return None
