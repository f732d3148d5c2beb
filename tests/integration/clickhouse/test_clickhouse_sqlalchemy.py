"""Superset's `clickhousedb://` SQLAlchemy dialect (clickhouse-connect's) against the local endpoint:
connection test, schema/table/column listing, a SELECT — what Superset does when a database is added."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

sqlalchemy = pytest.importorskip("sqlalchemy")
pytest.importorskip("clickhouse_connect.cc_sqlalchemy")


def test_superset_dialect(clickhouse_server: Any) -> None:
    from sqlalchemy import create_engine, inspect, text

    srv = clickhouse_server
    db = f"sa_{uuid.uuid4().hex[:6]}"
    url = f"clickhousedb://{srv.user}:{srv.password}@{srv.host}:{srv.port}/default"
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            assert conn.execute(text("SELECT 1")).scalar() == 1  # Superset's "Test connection"
            conn.execute(text(f"CREATE DATABASE {db}"))
            conn.execute(
                text(
                    f"CREATE TABLE {db}.prices (ticker String, bar_start DateTime64(3, 'UTC'), close Float64)"
                    " ENGINE = MergeTree ORDER BY (ticker, bar_start)"
                )
            )
            conn.execute(
                text(
                    f"CREATE VIEW {db}.v_last AS"
                    f" SELECT ticker, max(close) AS c FROM {db}.prices GROUP BY ticker"
                )
            )
            conn.execute(
                text(
                    f"INSERT INTO {db}.prices VALUES"
                    " ('AAPL', '2024-01-02 15:30:00', 190.5), ('MSFT', now64(3), 370)"
                )
            )
        insp = inspect(engine)
        assert {db, "default", "system"} <= set(insp.get_schema_names())
        assert "prices" in insp.get_table_names(schema=db)
        assert "v_last" in insp.get_view_names(schema=db) or "v_last" in insp.get_table_names(schema=db)
        cols = {c["name"]: str(c["type"]) for c in insp.get_columns("prices", schema=db)}
        assert set(cols) == {"ticker", "bar_start", "close"}
        assert "DateTime64" in cols["bar_start"]
        insp.get_pk_constraint("prices", schema=db)
        insp.get_foreign_keys("prices", schema=db)
        insp.get_indexes("prices", schema=db)
        with engine.connect() as conn:
            rows = conn.execute(
                text(f"SELECT ticker, close FROM {db}.prices WHERE ticker = :t ORDER BY ticker"),
                {"t": "AAPL"},
            ).fetchall()
            assert [tuple(r) for r in rows] == [("AAPL", 190.5)]
            assert conn.execute(text(f"SELECT count() FROM {db}.v_last")).scalar() == 2
            conn.execute(text(f"DROP DATABASE {db}"))
    finally:
        engine.dispose()


def test_empty_select_keeps_its_columns_through_the_dialect(clickhouse_server: Any) -> None:
    # the endpoint sends no block for an empty Native result, as ClickHouse; the dialect asks for the columns
    from sqlalchemy import create_engine, text

    srv = clickhouse_server
    engine = create_engine(f"clickhousedb://{srv.user}:{srv.password}@{srv.host}:{srv.port}/default")
    try:
        with engine.connect() as conn:
            res = conn.execute(text("SELECT 1 AS a, 'x' AS b FROM system.tables WHERE 0"))
            assert list(res.keys()) == ["a", "b"] and res.fetchall() == []
    finally:
        engine.dispose()
