"""SQL built from user input is never SQL text: selectors, identifiers from settings and dashboard filter
values are checked or bound as parameters. Each test tries injection and asserts nothing ran or was dropped,
and that the error is one clean line (no traceback)."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import CACHE, run_cli

INJECTIONS = [
    "x'); DROP TABLE {t}; --",
    "x' OR 1=1; DROP TABLE {t} --",
    "x`; DROP TABLE {t}; --",
    'x"; DROP TABLE {t}; --',
    "x\\'; DROP TABLE {t}; --",
]


def _env(tmp_path: Path, clickhouse_server: Any, **extra: str) -> dict[str, str]:
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith("RTFIN")}
    env.update(
        RTFIN__LOCAL__DATA_DIR=str(tmp_path / ".rtfin"),
        RTFIN__LOCAL__CACHE_DIR=str(CACHE),
        RTFIN__CLICKHOUSE__HOST=clickhouse_server.host,
        RTFIN__CLICKHOUSE__PORT=str(clickhouse_server.port),
        RTFIN__CLICKHOUSE__PASSWORD=clickhouse_server.password,
        RTFIN__KAFKA__BOOTSTRAP="127.0.0.1:1",
        **extra,
    )
    return env


@pytest.fixture()
def victim(clickhouse_server: Any) -> Any:
    """A scratch database with a table the injections try to drop: (database, table, query function)."""
    db = f"inj_{uuid.uuid4().hex[:8]}"
    q = clickhouse_server.query
    q(f"CREATE DATABASE {db}")
    q(f"CREATE TABLE {db}.news (id String, ticker String) ENGINE = MergeTree ORDER BY id")
    q(f"INSERT INTO {db}.news VALUES ('a1', 'AAPL'), ('a2', 'MSFT')")
    yield db, f"{db}.news", q
    q(f"DROP DATABASE IF EXISTS {db}")


def _intact(victim: Any) -> None:
    db, table, q = victim
    assert q(f"SELECT count() FROM {table}").strip() == "2", f"{table} was changed"


def _clean_error(out: Any) -> None:
    assert out.returncode != 0, out.stdout
    assert "Traceback" not in out.stderr + out.stdout, out.stderr
    assert out.stderr.strip(), "no error message"


@pytest.mark.parametrize("select", ["a; rm -rf {d}", "$(touch {d}/pwned)", "`touch {d}/pwned`", "a && touch {d}/pwned",
                                    "a | tee {d}/pwned", "--vars {{x: 1}}", "a' OR '1"])  # fmt: skip
def test_transform_select_injection_is_rejected(tmp_path: Path, select: str) -> None:
    canary = tmp_path / "canary"
    canary.mkdir()
    (canary / "keep").write_text("x")
    out = run_cli(
        "transform", "run", "--select", select.format(d=canary), env=_env_min(tmp_path), cwd=tmp_path
    )
    _clean_error(out)
    assert "invalid dbt selector" in out.stderr, out.stderr
    assert sorted(p.name for p in canary.iterdir()) == ["keep"], "the selector ran a command"


def _env_min(tmp_path: Path) -> dict[str, str]:
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith("RTFIN")}
    env.update(RTFIN__LOCAL__DATA_DIR=str(tmp_path / ".rtfin"), RTFIN__LOCAL__CACHE_DIR=str(CACHE))
    return env


@pytest.mark.parametrize("template", INJECTIONS[:3])  # each a CLI process: keep it short
def test_database_names_from_settings_are_identifiers(
    tmp_path: Path, clickhouse_server: Any, victim: Any, template: str
) -> None:
    """Settings flow into DDL as identifiers: anything but a plain name is refused before any SQL runs."""
    evil = template.format(t=victim[1])
    out = run_cli("transform", "ddl", env=_env(tmp_path, clickhouse_server, RTFIN__CLICKHOUSE__RAW_DATABASE=evil),
                  cwd=tmp_path)  # fmt: skip
    _clean_error(out)
    assert "invalid ClickHouse identifier" in out.stderr or "raw_database" in out.stderr, out.stderr
    _intact(victim)


@pytest.mark.parametrize("template", INJECTIONS[:3])  # each a CLI process: keep it short
def test_lag_warehouse_check_binds_database_names(
    tmp_path: Path, clickhouse_server: Any, victim: Any, template: str
) -> None:
    """`rtfin lag` reads table ages with the database names bound as query parameters."""
    evil = template.format(t=victim[1])
    env = _env(
        tmp_path, clickhouse_server, RTFIN__CLICKHOUSE__DATABASE=evil, RTFIN__CLICKHOUSE__RAW_DATABASE=evil
    )
    out = run_cli("lag", "--once", "--json", env=env, cwd=tmp_path, timeout=120)
    assert "Traceback" not in out.stderr + out.stdout, out.stderr
    _intact(victim)


@pytest.mark.parametrize("template", INJECTIONS)
def test_parameterised_ticker_search_through_the_endpoint(
    clickhouse_settings: Any, victim: Any, template: str
) -> None:
    """A ticker search as rtfin's client runs it (server-side typed parameters) treats the value as data."""
    from rtfin_cli.warehouse.client import get_client

    db, table, _ = victim
    evil = template.format(t=table)
    client = get_client(clickhouse_settings)
    try:
        for sql in (f"SELECT count() FROM {table} WHERE ticker = {{t:String}}",
                    f"SELECT count() FROM {table} WHERE ticker = %(t)s"):  # fmt: skip
            assert client.query(sql, parameters={"t": evil}).result_rows[0][0] == 0
        assert client.query(f"SELECT count() FROM {table} WHERE ticker = {{t:String}}",
                            parameters={"t": "AAPL"}).result_rows[0][0] == 1  # fmt: skip
    finally:
        client.close()
    _intact(victim)


def test_dashboard_datasets_never_template_user_input() -> None:
    """Local Superset enables Jinja templating: no dataset or chart may paste filter or URL values into SQL
    as text. Filter values reach SQL only through ``where_in``, which renders each value as a literal with
    the ClickHouse dialect (see the next test); ``filter_values`` may otherwise only be tested for being
    set. Native filters are bound by Superset's SQLAlchemy layer."""
    import re

    from rtfin_cli.dashboard import sync as dsync
    from rtfin_cli.settings import RtfinSettings

    bundle = dsync.plan(RtfinSettings())
    docs = [*bundle.of_kind("datasets").values(), *bundle.of_kind("charts").values()]
    assert docs
    for doc in docs:
        name = doc.get("table_name") or doc.get("slice_name")
        text = json.dumps(doc)
        for marker in ("url_param", "get_filters", "{{ filter_values", "|safe"):
            assert marker not in text, (name, marker)
        for expr in re.findall(r"\{\{(.*?)\}\}", text):
            assert re.fullmatch(r"\s*\w+\|where_in\s*", expr), (name, expr)
        for stmt in re.findall(r"\{%(.*?)%\}", text):
            assert re.fullmatch(r"\s*(set \w+ = filter_values\('\w+'(, remove_filter=True)?\)|if (not )?"
                                r"(\w+|filter_values\('\w+'\))|endif)\s*", stmt), (name, stmt)  # fmt: skip


def _one_clickhouse_literal(sql: str) -> bool:
    """True when ``sql`` is exactly one ClickHouse string literal (backslash escapes, doubled quotes)."""
    if len(sql) < 2 or sql[0] != "'" or sql[-1] != "'":
        return False
    i, body = 0, sql[1:-1]
    while i < len(body):
        if body[i] == "\\":
            i += 2
            continue
        if body[i] == "'":
            if body[i + 1 : i + 2] != "'":
                return False
            i += 2
            continue
        i += 1
    return i == len(body)


def test_where_in_renders_hostile_filter_values_as_one_literal_each() -> None:
    """``where_in`` compiles each value with the dialect Superset uses for rtfin's database (clickhousedb):
    quotes and backslashes are escaped, so a value never ends its literal."""
    from sqlalchemy import bindparam, create_engine

    dialect = create_engine("clickhousedb://u:p@127.0.0.1:1/db").dialect
    for value in ["Joe's", "x\\' OR 1=1 --", "a\\", "\\\\'); DROP TABLE t; --", "NVDA"]:
        rendered = str(bindparam("v", value).compile(dialect=dialect, compile_kwargs={"literal_binds": True}))
        assert _one_clickhouse_literal(rendered), (value, rendered)
