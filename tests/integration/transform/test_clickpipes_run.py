"""`rtfin transform run` with clickhouse.ingest = clickpipes, as a user runs it: the real local ClickHouse
endpoint for the DDL, the column types and dbt, and the strict fake of the ClickHouse Cloud API
(tests/fakes/clickpipes_cloud.py) for the pipes. Two runs of an unchanged configuration: the second sends
no POST and no PATCH; --dry-run prints the exact bodies and changes nothing."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from tests.conftest import run_cli
from tests.fakes import clickpipes_cloud
from tests.fakes.clickpipes_cloud import KEY, ORG, SECRET, SVC, FakeCloud
from tests.integration.transform.conftest import Space

KAFKA_PW = "kafka-password-never-printed"


@pytest.fixture()
def cloud() -> Iterator[FakeCloud]:
    with clickpipes_cloud.running() as srv:
        yield srv


def _env(space: Space, cloud: FakeCloud) -> dict[str, str]:
    return {
        **space.env,
        "RTFIN__CLICKHOUSE__INGEST": "clickpipes",
        "RTFIN__CLICKHOUSE__CLICKPIPES__API_URL": cloud.url,
        "RTFIN__CLICKHOUSE__CLICKPIPES__ORGANIZATION_ID": ORG,
        "RTFIN__CLICKHOUSE__CLICKPIPES__SERVICE_ID": SVC,
        "RTFIN__CLICKHOUSE__CLICKPIPES__KEY_ID": KEY,
        "RTFIN__CLICKHOUSE__CLICKPIPES__KEY_SECRET": SECRET,
        "RTFIN__KAFKA__SECURITY_PROTOCOL": "SASL_SSL",
        "RTFIN__KAFKA__SASL_USERNAME": "rtfin",
        "RTFIN__KAFKA__SASL_PASSWORD": KAFKA_PW,
    }


def test_run_twice_sends_nothing_the_second_time_and_dry_run_prints_bodies(space: Space,
                                                                           cloud: FakeCloud) -> None:  # fmt: skip
    env = _env(space, cloud)
    first = run_cli("transform", "run", "--select", "stg_news", "--json", env=env, cwd=space.cwd, timeout=600)
    assert first.returncode == 0, first.stderr
    actions = json.loads(first.stdout)["ingest"]["actions"]
    assert [a.split(":")[1].split()[0] for a in actions] == ["created"] * 3
    posts = cloud.calls("POST")
    assert len(posts) == 3 and all("description" not in body for _, _, body in posts)
    news = next(b for _, _, b in posts if b["destination"]["table"] == "news")
    assert {"name": "published_utc", "type": "DateTime64(3, 'UTC')"} in news["destination"]["columns"]

    cloud.requests.clear()
    second = run_cli(
        "transform", "run", "--select", "stg_news", "--json", env=env, cwd=space.cwd, timeout=600
    )
    assert second.returncode == 0, second.stderr
    assert [m for m, _, _ in cloud.requests] == ["GET"]  # no POST, no PATCH

    env["RTFIN__KAFKA__SASL_PASSWORD"] = "rotated-" + KAFKA_PW
    cloud.requests.clear()
    plan = run_cli("transform", "run", "--dry-run", "--json", env=env, cwd=space.cwd, timeout=300)
    assert plan.returncode == 0, plan.stderr
    planned = json.loads(plan.stdout)
    assert [m for m, _, _ in cloud.requests] == ["GET"]
    requests = planned["ingest"]["requests"]
    assert len(requests) == 3 and all(
        r["body"] == {"source": {"kafka": {"credentials": {"username": "***", "password": "***"}}}}
        for r in requests
    )
    assert KAFKA_PW not in plan.stdout + plan.stderr and planned["ddl"]["statements"]
    text = run_cli("transform", "run", "--dry-run", env=env, cwd=space.cwd, timeout=300)
    assert text.returncode == 0 and '"PATCH":' in text.stdout and KAFKA_PW not in text.stdout
