"""The local endpoint's confinement rules (rtfin_cli/local/clickhouse/confine.py) on SQL text: what a
ClickHouse server refuses (file outside user_files, INTO OUTFILE, FROM INFILE, programs, hosts not allowed)
is refused with ClickHouse's code; what the project runs passes."""

from __future__ import annotations

from pathlib import Path

import pytest

from rtfin_cli.local.clickhouse.confine import Confinement
from rtfin_cli.local.clickhouse.errors import CHError
from rtfin_cli.local.clickhouse.sqltext import split_insert

pytestmark = pytest.mark.unit


@pytest.fixture()
def rules(tmp_path: Path) -> Confinement:
    (tmp_path / "user_files").mkdir()
    return Confinement(user_files=tmp_path / "user_files")


def _code(rules: Confinement, sql: str) -> int | None:
    try:
        rules.check(sql.encode())
    except CHError as exc:
        return exc.code
    return None


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT * FROM file('/etc/passwd', 'LineAsString')",
        "SELECT file('/etc/passwd')",
        "SELECT * FROM file('../../etc/passwd', LineAsString)",
        "SELECT * FROM file('{..,x}/etc/passwd', LineAsString)",
        "SELECT * FROM FiLe ( /* c */ '/etc/hostname' )",
        "INSERT INTO FUNCTION file('/tmp/out.csv', 'CSV') SELECT 1",
        "CREATE TABLE t (a String) ENGINE = File(CSV, '/etc/passwd')",
        "SELECT * FROM sqlite('/home/u/.db', 't')",
        "CREATE DATABASE d ENGINE = Filesystem('/')",
        "ATTACH TABLE t FROM '/var/lib/x' (a UInt8) ENGINE = MergeTree ORDER BY a",
        "SELECT * FROM t FORMAT Protobuf SETTINGS format_schema = '/etc/passwd:Message'",
    ],
)
def test_files_outside_user_files_are_denied(rules: Confinement, sql: str) -> None:
    assert _code(rules, sql) == 291  # DATABASE_ACCESS_DENIED, as a server outside user_files_path


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT * FROM file('data.csv', 'CSV', 'a String, b UInt8')",
        "SELECT * FROM file('sub/*.parquet')",
        "CREATE TABLE t (a String) ENGINE = File(CSV)",  # data in the table's own directory
        "SELECT 'file(''/etc/passwd'')' AS text, url_path FROM t",  # quoted text and plain names are no calls
        "SELECT count() FROM rtfin.news WHERE url LIKE 'https://%'",
        "SELECT formatQuery({q:String})",
    ],
)
def test_what_a_server_allows_passes(rules: Confinement, sql: str) -> None:
    assert _code(rules, sql) is None


def test_a_user_files_path_under_the_directory_passes(rules: Confinement) -> None:
    assert rules.user_files is not None
    assert _code(rules, f"SELECT * FROM file('{rules.user_files / 'a.csv'}')") is None


def test_no_user_files_means_no_file_access() -> None:
    assert _code(Confinement(), "SELECT * FROM file('a.csv')") == 291


@pytest.mark.parametrize(
    ("sql", "code"),
    [
        ("SELECT 1 INTO OUTFILE '/tmp/x'", 358),  # INTO_OUTFILE_NOT_ALLOWED
        ("INSERT INTO t FROM INFILE '/etc/passwd' FORMAT CSV", 59),  # UNKNOWN_TYPE_OF_QUERY
        ("SELECT * FROM executable('id', 'TSV', 'x String')", 291),
        ("SELECT * FROM Python(df)", 291),
    ],
)
def test_client_side_clauses_and_programs_are_refused(rules: Confinement, sql: str, code: int) -> None:
    assert _code(rules, sql) == code


NETWORK = [
    "SELECT * FROM url('http://127.0.0.1:8080/x', 'CSV')",
    "SELECT * FROM remote('127.0.0.1:9000', system.one)",
    "SELECT * FROM s3('http://localhost:9000/b/k.csv')",
    "SELECT * FROM mysql('127.0.0.1:3306', 'db', 't', 'u', 'p')",
    "SELECT * FROM postgresql('[::1]:5432', 'db', 't', 'u', 'p')",
    "CREATE TABLE q (a String) ENGINE = Kafka SETTINGS kafka_broker_list = '127.0.0.1:9092'",
    "CREATE TABLE u (a String) ENGINE = URL('http://127.0.0.1/x', CSV)",
]


@pytest.mark.parametrize("sql", NETWORK)
def test_network_is_off_by_default(rules: Confinement, sql: str) -> None:
    assert _code(rules, sql) == 491  # UNACCEPTABLE_URL


@pytest.mark.parametrize("sql", NETWORK[:5])
def test_loopback_setting_opens_loopback_addresses(rules: Confinement, sql: str) -> None:
    assert _code(Confinement(rules.user_files, loopback_network=True), sql) is None


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT * FROM url('http://169.254.169.254/latest', 'CSV')",
        "SELECT * FROM url('http://127.0.0.1.evil.example/x', 'CSV')",
        "SELECT * FROM remote('127.0.0.1:9000,10.0.0.1:9000', system.one)",
        "SELECT * FROM remote(named_collection, database = 'x')",
        "SELECT * FROM url(concat('http://', 'x'))",
    ],
)
def test_loopback_setting_still_refuses_other_hosts(rules: Confinement, sql: str) -> None:
    assert _code(Confinement(rules.user_files, loopback_network=True), sql) == 491


def test_insert_data_is_not_sql_but_values_data_is_checked(rules: Confinement) -> None:
    csv = b"INSERT INTO t FORMAT CSV\nfile('/etc/passwd'),1\n"
    settings: dict[str, str] = {}
    rules.check_statement(csv, split_insert(csv), settings)  # CSV data: text, never evaluated
    assert settings == {}
    values = b"INSERT INTO t VALUES (1, now64(3))"
    rules.check_statement(values, split_insert(values), settings)  # inline: expressions allowed
    assert settings == {}
    values = b"INSERT INTO t VALUES (file('/etc/passwd'))"
    with pytest.raises(CHError) as err:
        rules.check_statement(values, split_insert(values), settings)
    assert err.value.code == 291
    streamed = b"INSERT INTO t VALUES "
    rules.check_statement(b"", split_insert(streamed), settings, inline=False)  # data still in the body
    assert settings == {
        "input_format_values_interpret_expressions": "0",
        "input_format_values_deduce_templates_of_expressions": "0",
    }


@pytest.mark.parametrize(
    ("sql", "settings"),
    [
        (b"SET input_format_values_interpret_expressions = 1", {}),
        (b"INSERT INTO t SETTINGS input_format_values_deduce_templates_of_expressions=1 VALUES (1)", {}),
        (b"SELECT 1", {"input_format_values_interpret_expressions": "1"}),
    ],
)
def test_the_values_settings_are_locked(rules: Confinement, sql: bytes, settings: dict[str, str]) -> None:
    with pytest.raises(CHError) as err:
        rules.check_statement(sql, split_insert(sql), settings)
    assert err.value.code == 452 and "should not be changed" in err.value.message


def test_a_format_schema_setting_must_be_a_user_file(rules: Confinement) -> None:
    rules.check_statement(b"SELECT 1", None, {"format_schema": "schema.proto:Message"})
    with pytest.raises(CHError) as err:
        rules.check_statement(b"SELECT 1", None, {"format_schema": "/etc/passwd:Message"})
    assert err.value.code == 291


def test_a_dictionary_over_a_local_table_is_not_network(rules: Confinement) -> None:
    local = b"CREATE DICTIONARY d (id UInt64, v String) PRIMARY KEY id SOURCE(CLICKHOUSE(TABLE 'src')) LAYOUT(FLAT()) LIFETIME(0)"
    rules.check(local)
    remote = local.replace(b"TABLE 'src'", b"HOST 'example.com' PORT 9000 TABLE 'src'")
    with pytest.raises(CHError) as err:
        rules.check(remote)
    assert err.value.code == 491
