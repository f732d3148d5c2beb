"""``python -m rtfin_cli.local.market``: the replay server in the foreground (the supervisor's command)."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from rtfin_cli.local.market import dataset as ds
from rtfin_cli.local.market.server import Market, serve


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m rtfin_cli.local.market", description=__doc__)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8765)
    p.add_argument("--speed", type=float, default=60.0, help="dataset seconds per wall second (0 = paused)")
    p.add_argument(
        "--start", help="dataset time to start at (ISO, 2025-01-06..2025-01-19); default: day 6 open"
    )
    p.add_argument("--end", help="dataset time at which the replay stops (default: end of the dataset)")
    p.add_argument("--rate-limit", type=float, default=0.0, help="REST requests/s before 429 (0 = unlimited)")
    p.add_argument("--timeline", type=Path, help="file that keeps the replay clock across restarts")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    market = Market(
        speed=args.speed,
        start_ms=ds.parse_ms(args.start) if args.start else None,
        end_ms=ds.parse_ms(args.end) if args.end else ds.END_MS,
        rate_limit=args.rate_limit,
        timeline=args.timeline,
    )
    serve(args.host, args.port, market)


if __name__ == "__main__":
    main()
