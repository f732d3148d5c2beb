"""`rtfin transform run`: DDL, ingestion set-up for the mode, then dbt build (and source freshness)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rtfin_cli.report import NullReporter, Reporter, message
from rtfin_cli.settings import RtfinSettings
from rtfin_cli.transform.dbt import DbtOutcome, invoke
from rtfin_cli.warehouse.ddl import DdlResult

STAGE = "transform"


@dataclass
class RunOutcome:
    """What a run did: the DDL, the ingestion set-up, the dbt build and (when run) source freshness."""

    ddl: DdlResult
    ingest: dict[str, Any]
    build: DbtOutcome
    freshness: DbtOutcome | None

    @property
    def success(self) -> bool:
        return self.build.success

    def as_dict(self) -> dict[str, Any]:
        return {
            "success": self.success,
            "ddl": self.ddl.as_dict(),
            "ingest": self.ingest,
            "build": self.build.as_dict(),
            "freshness": self.freshness.as_dict() if self.freshness else None,
        }


def run(
    settings: RtfinSettings,
    select: list[str] | None = None,
    full_refresh: bool = False,
    target: str | None = None,
    freshness: bool = True,
    reporter: Reporter | None = None,
) -> RunOutcome:
    """Everything `rtfin transform run` does; a DDL or connection failure raises before dbt runs.

    Each step and each dbt node's result is reported as a one-line message (stage ``transform``).
    """
    from rtfin_cli.transform.dbt import check_selectors
    from rtfin_cli.warehouse import ddl, ingest
    from rtfin_cli.warehouse.client import get_client

    if select:
        check_selectors(select)  # bad input fails before anything touches the server
    ingest.check(settings)
    client = get_client(settings)
    rep = reporter or NullReporter()

    def say(text: str) -> None:
        message(rep, STAGE, text)

    ddl_result = ddl.apply(settings.clickhouse, client)
    say(f"ddl: {len(ddl_result.applied)} applied, {len(ddl_result.already)} already there")
    ingest_result = ingest.setup(settings, client, reporter=rep)
    say(f"ingest ({ingest_result['mode']}): ready")
    # With --select, run only the tests whose models are all selected (dbt's default would also run a
    # test that reads an unselected model, e.g. the replay test over every mart and reporting view).
    build = invoke(
        settings,
        "build",
        select=select,
        full_refresh=full_refresh,
        target=target,
        extra=["--indirect-selection", "cautious"] if select else None,
        progress=say if reporter is not None else None,
    )
    fresh = None
    if freshness and not select and build.success:
        fresh = invoke(settings, "source freshness", target=target)
    return RunOutcome(ddl_result, ingest_result, build, fresh)


def plan(settings: RtfinSettings, reporter: Reporter | None = None) -> dict[str, Any]:
    """What `rtfin transform run` would do, changing nothing and running no dbt: the DDL statements and
    the ingestion requests (ClickPipes: the exact bodies, credentials masked, after reading the pipes)."""
    from rtfin_cli.warehouse import ddl, ingest

    ingest.check(settings)
    return {
        "dry_run": True,
        "ddl": ddl.apply(settings.clickhouse, dry_run=True).as_dict(),
        "ingest": ingest.setup(settings, None, reporter=reporter, dry_run=True),
    }
