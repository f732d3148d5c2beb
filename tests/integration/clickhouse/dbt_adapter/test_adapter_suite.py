"""dbt's own adapter test suite (``dbt-tests-adapter``) against the local endpoint, subclassed the way
dbt-clickhouse subclasses it for a ClickHouse server (its ``tests/integration/adapter``): the classes
below run unchanged unless noted. Classes of the package not run here, and why, are listed in
``docs/local-clickhouse.md`` ("dbt adapter suite").
"""

from __future__ import annotations

from typing import Any

import pytest
from dbt.tests.adapter.basic.expected_catalog import base_expected_catalog, no_stats
from dbt.tests.adapter.basic.test_adapter_methods import BaseAdapterMethod
from dbt.tests.adapter.basic.test_base import BaseSimpleMaterializations
from dbt.tests.adapter.basic.test_docs_generate import BaseDocsGenerate
from dbt.tests.adapter.basic.test_empty import BaseEmpty
from dbt.tests.adapter.basic.test_ephemeral import BaseEphemeral
from dbt.tests.adapter.basic.test_generic_tests import BaseGenericTests
from dbt.tests.adapter.basic.test_incremental import BaseIncremental, BaseIncrementalNotSchemaChange
from dbt.tests.adapter.basic.test_singular_tests import BaseSingularTests
from dbt.tests.adapter.basic.test_singular_tests_ephemeral import BaseSingularTestsEphemeral
from dbt.tests.adapter.basic.test_snapshot_check_cols import BaseSnapshotCheckCols
from dbt.tests.adapter.basic.test_snapshot_timestamp import BaseSnapshotTimestamp
from dbt.tests.adapter.basic.test_validate_connection import BaseValidateConnection

pytestmark = [
    pytest.mark.integration,
    pytest.mark.slow,
    pytest.mark.filterwarnings("ignore:Class-scoped fixtures defined as instance methods"),
]


class TestSimpleMaterializations(BaseSimpleMaterializations):
    pass


class TestEmpty(BaseEmpty):
    pass


class TestEphemeral(BaseEphemeral):
    pass


class TestSingularTests(BaseSingularTests):
    pass


class TestSingularTestsEphemeral(BaseSingularTestsEphemeral):
    pass


class TestGenericTests(BaseGenericTests):
    pass


class TestIncremental(BaseIncremental):
    pass


# The package's model concatenates with Postgres casts; ClickHouse spells the same model with its own
# functions (dbt-clickhouse's suite does the same).
INCREMENTAL_NOT_SCHEMA_CHANGE_SQL = """
{{ config(materialized="incremental", unique_key="user_id_current_time", on_schema_change="append_new_columns") }}
select
    toString(1) || '-' || toString(now64()) as user_id_current_time,
    {% if is_incremental() %}
        'thisis18characters' as platform
    {% else %}
        'okthisis20characters' as platform
    {% endif %}
"""


class TestIncrementalNotSchemaChange(BaseIncrementalNotSchemaChange):
    @pytest.fixture(scope="class")
    def models(self) -> dict[str, str]:
        return {"incremental_not_schema_change.sql": INCREMENTAL_NOT_SCHEMA_CHANGE_SQL}


class TestSnapshotCheckCols(BaseSnapshotCheckCols):
    pass


class TestSnapshotTimestamp(BaseSnapshotTimestamp):
    pass


class TestAdapterMethods(BaseAdapterMethod):
    pass


class TestValidateConnection(BaseValidateConnection):
    pass


class TestDocsGenerate(BaseDocsGenerate):
    @pytest.fixture(scope="class")
    def expected_catalog(self, project: Any, profile_user: str) -> dict[str, Any]:
        # ClickHouse's types for the seed's columns; no owner and no table statistics in its catalog
        return base_expected_catalog(  # type: ignore[no-untyped-call,no-any-return]
            project, role=None, id_type="Int32", text_type="String", time_type="DateTime",
            view_type="view", table_type="table", model_stats=no_stats(),  # type: ignore[no-untyped-call]
        )  # fmt: skip
