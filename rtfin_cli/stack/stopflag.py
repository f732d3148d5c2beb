"""A stop request for the stack's long-running loops: set by SIGTERM/SIGINT, polled between steps."""

from __future__ import annotations

import signal
import time
from types import FrameType


class StopFlag:
    """Set once a stop was asked for; :meth:`sleep` wakes up early when it is."""

    def __init__(self) -> None:
        self.stopping = False

    def set(self, signum: int = 0, frame: FrameType | None = None) -> None:
        self.stopping = True

    def on_signals(self) -> StopFlag:
        """Install this flag as the SIGTERM and SIGINT handler (the loop then ends cleanly, exit 0)."""
        signal.signal(signal.SIGTERM, self.set)
        signal.signal(signal.SIGINT, self.set)
        return self

    def sleep(self, seconds: float) -> None:
        """Sleep up to ``seconds``, returning within half a second of a stop request."""
        end = time.monotonic() + seconds
        while not self.stopping and time.monotonic() < end:
            time.sleep(min(0.5, end - time.monotonic()))
