"""``python -m rtfin_cli.local.clickhouse``: the server process (started by ClickHouseServer / `rtfin local
clickhouse start`). Exits 0 on SIGTERM/SIGINT after finishing in-flight requests and closing chDB."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

from rtfin_cli.local.clickhouse import PASSWORD_ENV
from rtfin_cli.local.clickhouse.credentials import ensure_password

if TYPE_CHECKING:  # chDB is imported when the server starts, after the time zone is set
    from rtfin_cli.local.clickhouse.engine import Engine
    from rtfin_cli.local.clickhouse.protocol import Server


log = logging.getLogger("rtfin.clickhouse")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m rtfin_cli.local.clickhouse", description=__doc__)
    parser.add_argument(
        "--data-dir", required=True, type=Path, help="local data dir; the database is <dir>/clickhouse/db"
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8123)
    parser.add_argument("--user", default="default")
    parser.add_argument("--max-body-mb", type=int, default=4096, help="largest accepted request body")
    parser.add_argument("--max-query-mb", type=int, default=16, help="largest SQL text (not INSERT data)")
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING"],
                        help="DEBUG logs every query; INFO only slow (>= 1 s) and failed ones")  # fmt: skip
    parser.add_argument("--timezone", default="UTC", help="server time zone (ClickHouse Cloud runs UTC)")
    return parser


def _on_signals(server: Server, stop: threading.Event) -> None:
    """SIGTERM/SIGINT: stop accepting (serve_forever returns) and end the session reaper."""

    def on_signal(signum: int, _frame: object) -> None:
        log.info("signal %s: shutting down", signum)
        stop.set()
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)


def _serve(server: Server, engine: Engine) -> None:
    """Serve until shut down; then let in-flight requests finish (20 s at most) and close chDB."""
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        server.server_close()
        if not server.drain(timeout=20):
            log.warning("requests still running after 20 s; closing the engine anyway")
        engine.close()
        log.info("stopped")


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=args.log_level, stream=sys.stdout, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    password = os.environ.pop(PASSWORD_ENV, None) or ensure_password(args.data_dir)
    os.environ["TZ"] = args.timezone  # read by the engine when it starts
    time.tzset()

    from rtfin_cli.local.clickhouse.engine import Engine
    from rtfin_cli.local.clickhouse.protocol import Server

    engine = Engine(Path(args.data_dir).resolve() / "clickhouse" / "db")
    server = Server(
        (args.host, args.port), engine, args.user, password,
        max_body_bytes=args.max_body_mb << 20, max_query_bytes=args.max_query_mb << 20,
    )  # fmt: skip
    stop = threading.Event()
    _on_signals(server, stop)

    def reaper() -> None:
        while not stop.wait(10):
            engine.expire_sessions()

    threading.Thread(target=reaper, daemon=True, name="session-reaper").start()
    log.info(
        "ClickHouse %s (chDB) listening on http://%s:%s, user %s",
        engine.version,
        args.host,
        args.port,
        args.user,
    )
    _serve(server, engine)
    return 0


if __name__ == "__main__":
    sys.exit(main())
