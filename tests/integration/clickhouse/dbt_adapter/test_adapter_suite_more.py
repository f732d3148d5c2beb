"""More of dbt's adapter test suite (``dbt-tests-adapter``) against the local endpoint: aliases, ``dbt show``,
incremental unique keys, ``--empty``, and snapshots whose source table is changed by ClickHouse SQL.
Subclassed as dbt-clickhouse subclasses them; what is skipped and why: docs/local-clickhouse.md."""

from __future__ import annotations

import re
from typing import Any

import pytest
from dbt.tests.adapter.aliases.test_aliases import (
    BaseAliasErrors,
    BaseAliases,
    BaseSameAliasDifferentDatabases,
    BaseSameAliasDifferentSchemas,
)
from dbt.tests.adapter.dbt_show.test_dbt_show import BaseShowLimit, BaseShowSqlHeader
from dbt.tests.adapter.empty.test_empty import BaseTestEmpty
from dbt.tests.adapter.incremental import test_incremental_unique_id as unique_id
from dbt.tests.adapter.simple_snapshot.test_snapshot import BaseSimpleSnapshot, BaseSnapshotCheck
from dbt.tests.util import relation_from_name

pytestmark = [
    pytest.mark.integration,
    pytest.mark.slow,
    pytest.mark.filterwarnings("ignore:Class-scoped fixtures defined as instance methods"),
]


class TestAliases(BaseAliases):
    pass


class TestAliasErrors(BaseAliasErrors):
    pass


class TestSameAliasDifferentSchemas(BaseSameAliasDifferentSchemas):
    pass


class TestSameAliasDifferentDatabases(BaseSameAliasDifferentDatabases):
    pass


class TestShowLimit(BaseShowLimit):
    pass


class TestShowSqlHeader(BaseShowSqlHeader):
    pass


class TestEmpty(BaseTestEmpty):
    pass


def _clickhouse_expected(sql: str) -> str:
    """The package's expected-table models union a DATE with string literals (Postgres casts them):
    ClickHouse needs each literal a Date. The seed's empty city is '' in a ClickHouse String column (its
    seeds are not Nullable), not NULL."""
    sql = sql.replace("'CO','Denver',null,", "'CO','Denver','',")
    return re.sub(r"(?<!cast\()'(\d{4}-\d\d-\d\d)'(?! as date)", r"toDate('\1')", sql)


class TestIncrementalUniqueKey(unique_id.BaseIncrementalUniqueKey):
    @pytest.fixture(scope="class")
    def models(self) -> dict[str, Any]:
        names = ["trinary_unique_key_list", "nontyped_trinary_unique_key_list", "unary_unique_key_list",
                 "not_found_unique_key", "empty_unique_key_list", "no_unique_key", "empty_str_unique_key",
                 "str_unique_key", "duplicated_unary_unique_key_list", "not_found_unique_key_list"]  # fmt: skip
        models: dict[str, Any] = {f"{n}.sql": getattr(unique_id, f"models__{n}_sql") for n in names}
        models["expected"] = {
            "one_str__overwrite.sql": _clickhouse_expected(
                unique_id.models__expected__one_str__overwrite_sql
            ),
            "unique_key_list__inplace_overwrite.sql": _clickhouse_expected(
                unique_id.models__expected__unique_key_list__inplace_overwrite_sql
            ),
        }
        return models


POSTGRES_INTERVAL, CLICKHOUSE_INTERVAL = re.compile(r"interval '1 (day|hour)'"), r"INTERVAL 1 \1"


class ClickHouseFactTable:
    """The snapshot suite changes its source table ``fact`` with Postgres SQL; these are the same changes
    in ClickHouse SQL (a table needs an engine; rows change through synchronous mutations)."""

    project: Any

    def _name(self, table: str) -> Any:
        return relation_from_name(self.project.adapter, table)

    def create_fact_from_seed(self, where: str | None = None) -> None:
        fact, seed = self._name("fact"), self._name("seed")
        self.project.run_sql(f"DROP TABLE IF EXISTS {fact}")
        self.project.run_sql(f"CREATE TABLE {fact} ENGINE = MergeTree ORDER BY id AS "
                             f"SELECT * FROM {seed} WHERE {where or '1 = 1'}")  # fmt: skip

    def insert_fact_records(self, where: str | None = None) -> None:
        fact, seed = self._name("fact"), self._name("seed")
        self.project.run_sql(f"INSERT INTO {fact} SELECT * FROM {seed} WHERE {where or '1 = 1'}")

    def update_fact_records(self, updates: dict[str, str], where: str | None = None) -> None:
        sets = ", ".join(
            f"{col} = {POSTGRES_INTERVAL.sub(CLICKHOUSE_INTERVAL, expr)}" for col, expr in updates.items()
        )
        self.project.run_sql(f"ALTER TABLE {self._name('fact')} UPDATE {sets} WHERE {where or '1 = 1'} "
                             "SETTINGS mutations_sync = 2")  # fmt: skip

    def delete_fact_records(self, where: str | None = None) -> None:
        self.project.run_sql(f"ALTER TABLE {self._name('fact')} DELETE WHERE {where or '1 = 1'} "
                             "SETTINGS mutations_sync = 2")  # fmt: skip

    def add_fact_column(self, column: str | None = None, definition: str | None = None) -> None:
        ch_type = "Nullable(String)" if definition and "varchar" in definition.lower() else definition
        self.project.run_sql(f"ALTER TABLE {self._name('fact')} ADD COLUMN {column} {ch_type}")


HARD_DELETES = (
    "dbt-clickhouse 1.10's snapshot finds hard deletes with `LEFT JOIN ... WHERE key IS NULL` without "
    "join_use_nulls: ClickHouse fills the missing key with 0, so deleted rows are never closed out (the same "
    "on a ClickHouse server: the SQL runs in the same engine)"
)


class TestSimpleSnapshot(ClickHouseFactTable, BaseSimpleSnapshot):
    @pytest.mark.skip(reason=HARD_DELETES)
    def test_deletes_are_captured_by_snapshot(self, project: Any) -> None: ...

    @pytest.mark.skip(reason=HARD_DELETES)
    def test_revives_are_captured_by_snapshot(self, project: Any) -> None: ...


class TestSnapshotCheck(ClickHouseFactTable, BaseSnapshotCheck):
    pass
