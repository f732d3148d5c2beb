"""`rtfin local status` summarises the worst state of any stage: never OK while one is MISSING or STALLED."""

from __future__ import annotations

from typing import Any

from rtfin_cli.cli.local import _lag_line
from rtfin_cli.lag.model import verdict

OK_KAFKA = {"bootstrap": "b", "status": "ok", "error": ""}


def _doc(*states: str, kafka: dict[str, str] = OK_KAFKA) -> dict[str, Any]:
    stages = [{"name": f"stage{i}", "source": "x", "state": s, "age_s": 1.0} for i, s in enumerate(states)]
    return {"kafka": kafka, "groups": [], "stages": stages}


def test_the_worst_stage_decides() -> None:
    assert verdict(_doc("OK", "IDLE", "OK")) == "OK"
    assert verdict(_doc("IDLE", "IDLE")) == "IDLE"
    assert verdict(_doc("OK", "LAGGING", "IDLE")) == "LAGGING"
    assert verdict(_doc("OK", "MISSING", "STALLED")) == "MISSING"
    assert verdict(_doc("OK", "STALLED")) == "STALLED"
    assert verdict(_doc("OK", kafka={"status": "unreachable"})) == "UNREACHABLE"
    assert verdict(_doc("OK", "SOMETHING-NEW")) == "UNREACHABLE"  # an unknown state is never OK


def test_status_line_never_says_ok_while_the_sentiment_job_is_missing() -> None:
    # `rtfin lag --once` exits 0 here (no threshold was given): the exit code must not be the verdict
    line = _lag_line({"exit_code": 0, "snapshot": _doc("OK", "MISSING", "OK")})
    assert line.startswith("lag: [magenta]MISSING[/]") and "stage1 MISSING" in line
    stalled = _lag_line({"exit_code": 0, "snapshot": _doc("OK", "STALLED")})
    assert stalled.startswith("lag: [bold red]STALLED[/]")
    assert _lag_line({"exit_code": 0, "snapshot": _doc("OK", "IDLE")}).startswith("lag: [green]OK[/]")
    assert "rtfin lag exit 4" in _lag_line(
        {"exit_code": 4, "snapshot": _doc(kafka={"status": "unreachable"})}
    )
