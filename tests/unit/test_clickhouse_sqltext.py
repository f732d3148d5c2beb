"""The endpoint's SQL boundary finding, error translation, codecs and credentials (no server)."""

from __future__ import annotations

import gzip
import stat
import zlib
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rtfin_cli.local.clickhouse import codecs, sqltext
from rtfin_cli.local.clickhouse.credentials import ensure_password, read_password
from rtfin_cli.local.clickhouse.errors import CHError, from_engine


@pytest.mark.parametrize(
    ("sql", "statement", "fmt", "data"),
    [
        (b"INSERT INTO t FORMAT Native\n\x00\x01\xff", "INSERT INTO t ", "Native", b"\x00\x01\xff"),
        (b"INSERT INTO `t x` (`a`, b) FORMAT RowBinary \r\nDATA", "INSERT INTO `t x` (`a`, b) ", "RowBinary", b"DATA"),  # noqa: E501
        (b"insert into t values (1, 'a'), (2, 'b')", "insert into t ", "Values", b" (1, 'a'), (2, 'b')"),
        (b"/* c */ INSERT INTO t SETTINGS x=0 FORMAT CSV\n1,2\n", "/* c */ INSERT INTO t SETTINGS x=0 ", "CSV", b"1,2\n"),  # noqa: E501
        (b"INSERT INTO t (s) FORMAT TSV\n'FORMAT' VALUES\n", "INSERT INTO t (s) ", "TSV", b"'FORMAT' VALUES\n"),  # noqa: E501
        (b"WITH 5 AS x INSERT INTO t FORMAT TSV\n1\n", "WITH 5 AS x INSERT INTO t ", "TSV", b"1\n"),
        (b"WITH (SELECT 1) AS y INSERT INTO t VALUES (1)", "WITH (SELECT 1) AS y INSERT INTO t ", "Values", b" (1)"),  # noqa: E501
    ],
)  # fmt: skip
def test_split_insert(sql: bytes, statement: str, fmt: str, data: bytes) -> None:
    split = sqltext.split_insert(sql)
    assert split is not None
    assert (split.statement, split.fmt, sql[split.data_offset :]) == (statement, fmt, data)


@pytest.mark.parametrize(
    "sql",
    [
        b"SELECT 1",
        b"INSERT INTO t SELECT * FROM s",
        b"INSERT INTO t WITH 1 AS x SELECT x",
        b"",
        b"-- x",
        b"WITH 1 AS x SELECT 'INSERT INTO t FORMAT TSV'",
        b"WITH 1 AS x INSERT INTO t SELECT x",
    ],
)
def test_split_insert_none(sql: bytes) -> None:
    assert sqltext.split_insert(sql) is None


def test_output_format_and_kind() -> None:
    assert sqltext.output_format(b"SELECT 1\n FORMAT Native") == "Native"
    assert sqltext.output_format(b"SELECT 'FORMAT JSON'") is None
    assert sqltext.output_format(b"SELECT format FROM t") is None
    assert sqltext.output_format(b"SELECT * FROM (SELECT 1 FORMAT CSV)") is None
    assert sqltext.output_format(b"SELECT 1 FORMAT JSON SETTINGS max_threads = 1") == "JSON"
    assert sqltext.without_format(b"SELECT 1 FORMAT Native") == b"SELECT 1 "
    assert sqltext.kind(b"  -- hi\n/* x */ select 1") == "SELECT"
    assert sqltext.kind(b"(SELECT 1)") == "("
    assert sqltext.kind(b"WITH 1 AS x INSERT INTO t SELECT x") == "INSERT"
    assert sqltext.kind(b"WITH (SELECT 1) AS x SELECT x") == "WITH"
    assert sqltext.second_statement(b"SET a = 1; SELECT 1") == 11
    assert sqltext.second_statement(b"SELECT ';'; -- c\n ;") is None
    assert sqltext.second_statement(b"SELECT 1") is None


@given(st.binary(max_size=200))
def test_lexer_never_fails_on_arbitrary_bytes(data: bytes) -> None:
    sqltext.split_insert(data)
    sqltext.output_format(data)
    sqltext.kind(data)


def test_engine_errors_keep_code_and_name() -> None:
    err = from_engine(
        RuntimeError("Code: 81. DB::Exception: Database nodb does not exist. (UNKNOWN_DATABASE)")
    )
    assert (err.code, err.name, err.status) == (81, "UNKNOWN_DATABASE", 404)
    assert (
        err.body("26.1")
        == "Code: 81. DB::Exception: Database nodb does not exist. (UNKNOWN_DATABASE) (version 26.1)\n"
    )
    wrapped = from_engine(
        RuntimeError(
            "Streaming query failed: Code: 395. DB::Exception: boom. (FUNCTION_THROW_IF_VALUE_IS_NON_ZERO)"
        )
    )
    assert wrapped.code == 395
    assert from_engine(RuntimeError("weird")).code == CHError("UNKNOWN_EXCEPTION", "").code


@pytest.mark.parametrize("encoding", ["gzip", "deflate", "zstd", "lz4"])
def test_codecs_roundtrip_multi_frame(encoding: str) -> None:
    payload = [b"a" * 1000, b"b" * 50000, b"c"]
    frames = []
    for part in payload:  # one compressed frame per part, as clickhouse-connect sends insert blocks
        enc = codecs.Encoder(encoding)
        frames.append(enc.compress(part) + enc.flush())
    wire = b"".join(frames)
    pieces = [wire[i : i + 777] for i in range(0, len(wire), 777)]
    assert b"".join(codecs.decoded(iter(pieces), encoding, 1 << 20)) == b"".join(payload)


def test_decompressed_size_is_limited() -> None:
    bomb = gzip.compress(b"\0" * (4 << 20))
    with pytest.raises(CHError) as info:
        b"".join(codecs.decoded(iter([bomb]), "gzip", 1 << 20))
    assert info.value.status == 413
    with pytest.raises(CHError, match="Cannot decompress"):
        b"".join(codecs.decoded(iter([b"not gzip"]), "gzip", 1 << 20))
    assert zlib  # deflate covered above


def test_choose_encoding() -> None:
    assert codecs.choose_encoding("lz4,zstd,gzip,deflate") == "lz4"
    assert codecs.choose_encoding("gzip;q=1.0, identity") == "gzip"
    assert codecs.choose_encoding("identity") is None


def test_password_generated_once_private(tmp_path: Path) -> None:
    assert read_password(tmp_path) is None
    pw = ensure_password(tmp_path)
    assert len(pw) >= 24 and ensure_password(tmp_path) == pw == read_password(tmp_path)
    assert stat.S_IMODE((tmp_path / "clickhouse" / "password").stat().st_mode) == 0o600
    assert ensure_password(tmp_path / "other") != pw


def test_local_profile_picks_up_generated_password(tmp_path: Path) -> None:
    from rtfin_cli.settings import load_settings

    env = {"RTFIN__LOCAL__DATA_DIR": str(tmp_path / ".rtfin")}
    assert load_settings(environ=env).settings.clickhouse.password is None
    pw = ensure_password(tmp_path / ".rtfin")
    loaded = load_settings(environ=env)
    assert loaded.settings.clickhouse.password is not None
    assert loaded.settings.clickhouse.password.get_secret_value() == pw
    assert loaded.sources["clickhouse.password"] == "generated"
    explicit = load_settings(environ={**env, "RTFIN__CLICKHOUSE__PASSWORD": "mine"})
    assert explicit.settings.clickhouse.password.get_secret_value() == "mine"  # type: ignore[union-attr]
