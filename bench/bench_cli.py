"""`rtfin --help` start-up time vs. a bare `python -c pass` in the same run."""

from __future__ import annotations

import subprocess
import sys

from bench import Result, timed


def run() -> list[Result]:
    def help_() -> None:
        subprocess.run([sys.executable, "-m", "rtfin_cli", "--help"], check=True, capture_output=True)

    def bare() -> None:
        subprocess.run([sys.executable, "-c", "pass"], check=True, capture_output=True)

    help_()
    t_help, t_bare = timed(help_, 7), timed(bare, 7)
    return [Result("cli.help_startup_s", t_help, "s", t_bare, "python -c pass", "< 0.5 s absolute")]
