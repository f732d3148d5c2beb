"""A per-test namespace on the session Kafka and ClickHouse: unique topics and databases, a temp data dir,
the matching RtfinSettings and the environment to run the `rtfin` CLI with."""

from __future__ import annotations

import itertools
import os
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import CACHE

_seq = itertools.count()


@dataclass
class Space:
    settings: Any  # RtfinSettings
    env: dict[str, str]
    topics: dict[str, str]  # role -> topic name
    cwd: Path

    def client(self) -> Any:
        from rtfin_cli.warehouse.client import get_client

        return get_client(self.settings)

    def count(self, sql: str) -> int:
        return int(self.client().command(sql))


def make_space(kafka_bootstrap: str, ch: Any, tmp: Path) -> Space:
    from rtfin_cli.settings import load_settings

    tag = f"t{os.getpid()}_{next(_seq)}_{uuid.uuid4().hex[:6]}"
    topics = {
        "news_raw": f"{tag}.news.raw",
        "stocks_aggs": f"{tag}.stocks.aggs",
        "news_sentiment": f"{tag}.news.sentiment",
        "dlq": f"{tag}.dlq",
    }
    env = {k: v for k, v in os.environ.items() if not k.startswith("RTFIN")}
    env.update(
        RTFIN__KAFKA__BOOTSTRAP=kafka_bootstrap,
        RTFIN__KAFKA__TOPICS__PARTITIONS="2",
        RTFIN__LOCAL__DATA_DIR=str(tmp / ".rtfin"),
        RTFIN__LOCAL__CACHE_DIR=str(CACHE),
        RTFIN__CLICKHOUSE__HOST=ch.host,
        RTFIN__CLICKHOUSE__PORT=str(ch.port),
        RTFIN__CLICKHOUSE__USER=ch.user,
        RTFIN__CLICKHOUSE__PASSWORD=ch.password.get_secret_value(),
        RTFIN__CLICKHOUSE__RAW_DATABASE=f"raw_{tag}",
        RTFIN__CLICKHOUSE__DATABASE=f"dbt_{tag}",
        RTFIN__CLICKHOUSE__LOADER_BATCH_S="0.5",
        **{f"RTFIN__KAFKA__TOPICS__{role.upper()}": name for role, name in topics.items()},
    )
    settings = load_settings(config=None, profile="local", environ=env).settings
    return Space(settings, env, topics, tmp)


@pytest.fixture()
def space(kafka_broker: Any, clickhouse_settings: Any, tmp_path: Path) -> Space:
    return make_space(kafka_broker.bootstrap, clickhouse_settings, tmp_path)
