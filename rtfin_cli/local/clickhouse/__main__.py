"""``python -m rtfin_cli.local.clickhouse``: the server process (started by ClickHouseServer / `rtfin local
clickhouse start`). Exits 0 on SIGTERM/SIGINT after finishing in-flight requests and closing chDB; exits
``FATAL_EXIT`` when the engine reports a fatal state (every later query would fail: only a restart helps)."""

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
from rtfin_cli.local.clickhouse.confine import Confinement
from rtfin_cli.local.clickhouse.credentials import ensure_password
from rtfin_cli.local.supervisor import private_dir

if TYPE_CHECKING:  # chDB is imported when the server starts, after the time zone is set
    from rtfin_cli.local.clickhouse.engine import Engine
    from rtfin_cli.local.clickhouse.server import Server


log = logging.getLogger("rtfin.clickhouse")
FATAL_EXIT = 70  # EX_SOFTWARE: the engine is unusable; the supervisor restarts the process
PROBE_S = 10.0  # how often the engine is probed with a real query (and sessions expired)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m rtfin_cli.local.clickhouse", description=__doc__)
    parser.add_argument(
        "--data-dir", required=True, type=Path, help="local data dir; the database is <dir>/clickhouse/db"
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8123)
    parser.add_argument("--user", default="default")
    parser.add_argument("--max-body-mb", type=int, default=256, help="largest accepted request body")
    parser.add_argument("--loopback-network", action="store_true",
                        help="let url(), remote(), s3() ... reach loopback addresses (never other hosts)")  # fmt: skip
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


def _serve(server: Server, engine: Engine) -> int:
    """Serve until shut down; then let in-flight requests finish (20 s at most) and close chDB. The exit
    code: 0, or FATAL_EXIT when the engine reported a fatal state (it is then not closed: that can hang)."""
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        server.server_close()
        if not server.drain(timeout=5 if server.fatal else 20):
            log.warning("requests still running at shutdown; closing anyway")
        if server.fatal is None:
            engine.close()
        log.info("stopped")
    return 0 if server.fatal is None else FATAL_EXIT


def _probe(server: Server, engine: Engine, stop: threading.Event) -> None:
    """Every PROBE_S: expire idle sessions and run ``SELECT 1``; a fatal answer stops the server."""
    from rtfin_cli.local.clickhouse.errors import CHError, is_fatal

    while not stop.wait(PROBE_S):
        engine.expire_sessions()
        try:
            engine.probe()
        except CHError as exc:
            if is_fatal(exc):
                server.engine_failed(exc)
                return
            log.warning("engine probe failed: %s", exc.message)


def _confinement(args: argparse.Namespace) -> Confinement:
    """Files only under ``<data_dir>/clickhouse/user_files`` (also the working directory, where the engine
    resolves relative paths), network only to loopback and only when asked."""
    user_files = Path(args.data_dir).resolve() / "clickhouse" / "user_files"
    private_dir(user_files)
    os.chdir(user_files)
    return Confinement(user_files, loopback_network=args.loopback_network)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=args.log_level, stream=sys.stdout, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    password = os.environ.pop(PASSWORD_ENV, None) or ensure_password(args.data_dir)
    os.environ["TZ"] = args.timezone  # read by the engine when it starts
    time.tzset()

    from rtfin_cli.local.clickhouse.engine import Engine
    from rtfin_cli.local.clickhouse.protocol import make_server

    engine = Engine(Path(args.data_dir).resolve() / "clickhouse" / "db")
    server = make_server(
        (args.host, args.port), engine, args.user, password, confinement=_confinement(args),
        max_body_bytes=args.max_body_mb << 20, max_query_bytes=args.max_query_mb << 20,
    )  # fmt: skip
    stop = threading.Event()
    _on_signals(server, stop)

    threading.Thread(target=_probe, args=(server, engine, stop), daemon=True, name="engine-probe").start()
    log.info(
        "ClickHouse %s (chDB) listening on http://%s:%s, user %s",
        engine.version,
        args.host,
        args.port,
        args.user,
    )
    code = _serve(server, engine)
    if code:  # skip the interpreter's teardown: the engine's own exit handlers may hang in a fatal state
        logging.shutdown()
        os._exit(code)
    return code


if __name__ == "__main__":
    sys.exit(main())
