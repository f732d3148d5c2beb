from __future__ import annotations

from rtfin_cli.settings import ClickHouseSettings, RtfinSettings
from rtfin_cli.warehouse import ddl, kafka_engine


def test_migrations_are_versioned_and_render_settings() -> None:
    ms = ddl.migrations()
    assert [m.version for m in ms] == sorted({m.version for m in ms}) and ms[0].version == 1
    ch = ClickHouseSettings(raw_database="landing", ttl_days=30)
    sql = "\n".join(s for m in ms for s in m.statements(ch))
    assert "CREATE TABLE IF NOT EXISTS landing.news" in sql and "rtfin_raw" not in sql
    assert sql.count("+ INTERVAL 30 DAY") == 3
    assert "ReplacingMergeTree(ingested_at)" in sql and "ReplacingMergeTree(scored_at)" in sql
    assert "ORDER BY (sym, ev, s)" in sql
    no_ttl = "\n".join(s for m in ms for s in m.statements(ClickHouseSettings()))
    assert "TTL" not in no_ttl


def test_split_ignores_semicolons_in_comments() -> None:
    assert ddl.split_sql("-- a; b\nSELECT 1;\n-- c;\nSELECT 2;") == ["SELECT 1", "SELECT 2"]


def test_dry_run_needs_no_server() -> None:
    result = ddl.apply(ClickHouseSettings(port=1), dry_run=True)
    assert result.dry_run and len(result.applied) == len(ddl.migrations()) and result.statements


def test_identifiers_are_checked() -> None:
    import pytest

    from rtfin_cli.errors import RtfinError

    with pytest.raises(RtfinError):
        ddl.apply(ClickHouseSettings(raw_database="x; DROP DATABASE y"), dry_run=True)


def test_kafka_engine_masks_secrets_unless_applying() -> None:
    s = RtfinSettings(
        kafka={"security_protocol": "SASL_SSL", "sasl_username": "u", "sasl_password": "hunter2-distinct"}
    )
    shown = "\n".join(kafka_engine.render(s))
    assert "hunter2-distinct" not in shown and kafka_engine.MASK in shown
    real = "\n".join(kafka_engine.render(s, mask_secrets=False))
    assert "kafka_sasl_password = 'hunter2-distinct'" in real
    assert real.count("ENGINE = Kafka") == 3 and "kafka_handle_error_mode = 'stream'" in real
