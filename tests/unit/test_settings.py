from __future__ import annotations

from pathlib import Path

import pytest

from rtfin_cli.errors import ConfigError
from rtfin_cli.settings import flatten, load_settings, masked_dump

ROOT = Path(__file__).resolve().parents[2]


def test_local_profile_is_default_and_needs_no_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    loaded = load_settings(environ={})
    assert loaded.profile == "local"
    assert loaded.settings.kafka.bootstrap == "127.0.0.1:9092"
    assert loaded.settings.polygon.rest_url.startswith("http://127.0.0.1")
    assert loaded.sources["polygon.rest_url"] == "profile:local"
    assert loaded.sources["kafka.bootstrap"] == "default"


def test_env_overrides_file_and_sources_are_tracked(tmp_path: Path) -> None:
    cfg = tmp_path / "rtfin.toml"
    cfg.write_text('[dev.kafka]\nbootstrap = "file:9092"\nclient_id = "from-file"\n')
    loaded = load_settings(cfg, "dev", environ={"RTFIN__KAFKA__BOOTSTRAP": "env:9092"})
    assert loaded.settings.kafka.bootstrap == "env:9092"
    assert loaded.settings.kafka.client_id == "from-file"
    assert loaded.sources["kafka.bootstrap"] == "env"
    assert loaded.sources["kafka.client_id"] == "file"
    assert loaded.sources["kafka.linger_ms"] == "default"


def test_profile_from_environment(tmp_path: Path) -> None:
    cfg = tmp_path / "rtfin.toml"
    cfg.write_text("[prod.kafka.topics]\npartitions = 9\n")
    loaded = load_settings(cfg, environ={"RTFIN_PROFILE": "prod"})
    assert loaded.profile == "prod" and loaded.settings.kafka.topics.partitions == 9


def test_unknown_profile_names_file_and_known_profiles(tmp_path: Path) -> None:
    cfg = tmp_path / "rtfin.toml"
    cfg.write_text("[dev]\n[prod]\n")
    with pytest.raises(ConfigError) as err:
        load_settings(cfg, "staging", environ={})
    assert "staging" in err.value.message and str(cfg) in err.value.message
    assert "dev, prod" in err.value.hint


def test_malformed_toml_names_file(tmp_path: Path) -> None:
    cfg = tmp_path / "rtfin.toml"
    cfg.write_text("[local\nkafka = 1\n")
    with pytest.raises(ConfigError) as err:
        load_settings(cfg, "local", environ={})
    assert str(cfg) in err.value.message and "malformed TOML" in err.value.message


def test_invalid_typed_value_names_key_and_file(tmp_path: Path) -> None:
    cfg = tmp_path / "rtfin.toml"
    cfg.write_text('[local.kafka.topics]\npartitions = "three"\n')
    with pytest.raises(ConfigError) as err:
        load_settings(cfg, "local", environ={})
    msg = err.value.message
    assert "kafka.topics.partitions" in msg and str(cfg) in msg and "'three'" in msg
    assert "\n" not in msg


def test_invalid_env_value_names_variable() -> None:
    with pytest.raises(ConfigError) as err:
        load_settings(None, "local", environ={"RTFIN__KAFKA__TOPICS__PARTITIONS": "x"})
    assert "RTFIN__KAFKA__TOPICS__PARTITIONS" in err.value.message


def test_blank_java_options_are_an_error_and_unset_means_spark_defaults() -> None:
    assert load_settings(None, "local", environ={}).settings.sentiment.java_options is None
    opts = "-XX:+UseSerialGC -Xss1m"
    assert (
        load_settings(
            None, "local", environ={"RTFIN__SENTIMENT__JAVA_OPTIONS": opts}
        ).settings.sentiment.java_options
        == opts
    )
    with pytest.raises(ConfigError) as err:
        load_settings(None, "local", environ={"RTFIN__SENTIMENT__JAVA_OPTIONS": "  "})
    assert "RTFIN__SENTIMENT__JAVA_OPTIONS" in err.value.message and "blank JVM options" in err.value.message


def test_unknown_key_is_rejected(tmp_path: Path) -> None:
    cfg = tmp_path / "rtfin.toml"
    cfg.write_text("[local.kafka]\nbootstrapp = 'x'\n")
    with pytest.raises(ConfigError) as err:
        load_settings(cfg, "local", environ={})
    assert "bootstrapp" in err.value.message


def test_secrets_are_masked() -> None:
    loaded = load_settings(None, "local", environ={"RTFIN__KAFKA__SASL_PASSWORD": "hunter2-very-secret"})
    assert loaded.settings.kafka.sasl_password is not None
    assert "hunter2" not in repr(loaded.settings)
    assert "hunter2" not in str(masked_dump(loaded.settings))


def test_example_toml_documents_every_key_for_every_profile() -> None:
    example = ROOT / "rtfin.example.toml"
    loaded = {p: load_settings(example, p, environ={}) for p in ("local", "dev", "prod")}
    local_file_keys = {k for k, src in loaded["local"].sources.items() if src == "file"}
    text = example.read_text()
    for key in flatten(loaded["local"].settings.model_dump()):
        leaf = key.rsplit(".", 1)[1]
        assert key in local_file_keys or f"# {leaf} =" in text, f"{key} undocumented in rtfin.example.toml"
    assert loaded["prod"].settings.kafka.security_protocol == "SASL_SSL"


def test_ingest_groups_follow_the_ingest_mode() -> None:
    topics = ["rtfin.news.raw", "rtfin.stocks.aggs", "rtfin.news.sentiment"]
    loader = load_settings(environ={}).settings
    assert loader.ingest_groups() == {"rtfin-loader": topics}
    engine = load_settings(environ={"RTFIN__CLICKHOUSE__INGEST": "kafka-engine"}).settings
    assert engine.ingest_groups() == {"rtfin-clickhouse": topics}
    pipes = load_settings(environ={"RTFIN__CLICKHOUSE__INGEST": "clickpipes"}).settings
    assert pipes.ingest_groups() == {
        "rtfin-clickpipes-news": ["rtfin.news.raw"],
        "rtfin-clickpipes-stock_aggs": ["rtfin.stocks.aggs"],
        "rtfin-clickpipes-news_sentiment": ["rtfin.news.sentiment"],
    }


def test_deprecated_lag_loader_group_names_the_loader_group() -> None:
    old = load_settings(environ={"RTFIN__LAG__LOADER_GROUP": "mine"}).settings
    assert old.clickhouse.loader_group == "mine" and "mine" in old.ingest_groups()
    both = {"RTFIN__LAG__LOADER_GROUP": "old", "RTFIN__CLICKHOUSE__LOADER_GROUP": "new"}
    assert load_settings(environ=both).settings.clickhouse.loader_group == "new"


def test_local_paths_derive_from_the_data_dir(tmp_path: Path) -> None:
    s = load_settings(environ={"RTFIN__LOCAL__DATA_DIR": str(tmp_path)}).settings
    assert s.local.clickhouse_password_file() == tmp_path.resolve() / "clickhouse" / "password"
    assert s.local.superset_password_file() == tmp_path.resolve() / "superset" / "admin_password"
    assert s.sentiment.local_checkpoint_dir(tmp_path) == tmp_path.resolve() / ".rtfin/checkpoints/sentiment"
    remote = load_settings(environ={"RTFIN__SENTIMENT__CHECKPOINT_DIR": "/Volumes/x/ckpt"}).settings
    assert remote.sentiment.local_checkpoint_dir(tmp_path) is None
