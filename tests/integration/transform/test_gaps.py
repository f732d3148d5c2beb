"""`rtfin gaps` on the real ClickHouse endpoint: a hole made by deleting rows is listed per ticker (exit 8)
and `--repair` fetches it from the replay server's aggregates endpoint through Kafka until none is left."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

from rtfin_cli.local.market.service import MarketServer
from rtfin_cli.local.supervisor import free_port
from tests.conftest import run_cli
from tests.integration.transform.conftest import Space

TICKERS = ["AAPL", "MSFT", "XOM"]


def _load(space: Space) -> None:
    from rtfin_cli.warehouse.loader import Loader

    Loader(space.settings, batch_s=0.2).run(once=True, timeout_s=120)


def _gaps(env: dict[str, str], cwd: Path, *args: str) -> tuple[int, dict[str, object], str]:
    out = run_cli("gaps", "--json", *args, env=env, cwd=cwd, timeout=180)
    return out.returncode, json.loads(out.stdout), out.stderr


def test_gaps_lists_a_deleted_hole_and_repair_closes_it(space: Space, tmp_path: Path) -> None:
    from rtfin_cli.warehouse import ddl

    market = MarketServer(data_dir=tmp_path / "market", port=free_port(), speed=0.0)
    market.start(timeout=60)
    env = {**space.env, "RTFIN__POLYGON__REST_URL": market.url, "RTFIN__POLYGON__WS_URL": market.ws_url}
    try:
        assert run_cli("topics", "create", env=env, cwd=space.cwd).returncode == 0
        ddl.apply(space.settings.clickhouse, space.client())
        cmd = [sys.executable, "-m", "rtfin_cli", "produce", "stocks", "--tickers", ",".join(TICKERS)]
        proc = subprocess.Popen(cmd, env=env, cwd=space.cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            deadline = time.monotonic() + 60
            while not market.control("status")["subscriptions"] and time.monotonic() < deadline:
                time.sleep(0.2)
            market.control("clock", {"speed": 60})
            time.sleep(15)  # 5 minutes before the open, then about 10 session minutes
            market.control("clock", {"speed": 0})
            time.sleep(1)
        finally:
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(60) == 0, proc.stderr.read() if proc.stderr else ""
        _load(space)
        code, report, err = _gaps(env, space.cwd)
        assert code == 0 and report["missing_minutes"] == 0, err
        assert report["tickers_audited"] == len(TICKERS)

        raw = space.settings.clickhouse.raw_database
        client = space.client()
        first, last = client.query(
            f"SELECT min(s), max(s) FROM {raw}.stock_aggs WHERE sym = 'MSFT'"
        ).result_rows[0]
        assert last - first >= 6 * 60_000
        lo, hi = first + 2 * 60_000, first + 4 * 60_000
        client.command(
            f"ALTER TABLE {raw}.stock_aggs DELETE WHERE sym = 'MSFT' AND s BETWEEN {lo} AND {hi}",
            settings={"mutations_sync": 2},
        )
        code, report, err = _gaps(env, space.cwd, "--tickers", "msft,XOM")
        assert code == 8 and "3 minute bar(s) missing in 1 hole(s)" in err
        assert [(h["sym"], h["from_ms"], h["to_ms"], h["minutes"]) for h in report["holes"]] == [  # type: ignore[union-attr, index]
            ("MSFT", lo, hi, 3)
        ]
        assert report["tickers_audited"] == 2

        code, report, err = _gaps(env, space.cwd, "--repair")
        assert code == 8 and report["repaired"] == 3, err
        _load(space)
        code, report, err = _gaps(env, space.cwd)
        assert code == 0 and report["missing_minutes"] == 0, err

        bad = run_cli("gaps", "--tickers", " , ", env=env, cwd=space.cwd)
        assert bad.returncode == 2 and "--tickers is empty" in bad.stderr
    finally:
        market.stop()
