from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from rtfin_cli.errors import UsageError
from rtfin_cli.settings import RtfinSettings
from rtfin_cli.transform import dbt


def test_profile_comes_from_settings_and_holds_no_secret(tmp_path: Path) -> None:
    s = RtfinSettings(
        clickhouse={
            "host": "ch.example",
            "port": 8443,
            "secure": True,
            "password": "pw-distinct",
            "database": "m",
        },
        local={"data_dir": str(tmp_path)},
    )
    directory = dbt.write_profile(s, "rtfin")
    text = (directory / "profiles.yml").read_text()
    assert "pw-distinct" not in text
    out = yaml.safe_load(text)["rtfin"]["outputs"]["rtfin"]
    assert (
        out["host"] == "ch.example" and out["port"] == 8443 and out["secure"] is True and out["schema"] == "m"
    )
    assert out["password"] == "{{ env_var('RTFIN_CLICKHOUSE_PASSWORD', '') }}"
    assert (directory / "profiles.yml").stat().st_mode & 0o077 == 0


@pytest.mark.parametrize(
    "sel", ["stg_news", "+fct_stock_bars", "tag:nightly", "path:models/marts", "a,b", "@x"]
)
def test_good_selectors(sel: str) -> None:
    assert dbt.check_selectors([sel]) == [sel]


@pytest.mark.parametrize("sel", ["x; rm -rf /", "$(id)", "a`b`", "--vars={}", "a|b", "x>y"])
def test_injection_is_refused(sel: str) -> None:
    with pytest.raises(UsageError):
        dbt.check_selectors([sel])


def test_project_is_found() -> None:
    assert (dbt.project_dir(RtfinSettings()) / "dbt_project.yml").exists()
