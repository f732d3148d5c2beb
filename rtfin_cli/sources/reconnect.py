"""When to reconnect a streaming connection, and the counters that show how the connection fared.

A feed drops healthy connections as a matter of course (a close frame 1001 when a server goes away, a TCP
reset seen as 1006). Such a drop after a successful subscribe is not a failure: the next attempt starts
at once (with a little jitter so that many clients do not reconnect in step). Backoff, exponential with
jitter and a cap, applies only to consecutive attempts that failed before subscribing. A client that has
never subscribed gives up after ``max_failures`` such attempts (a wrong URL or a service that is not
there); once it has streamed, it keeps trying for as long as it runs.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from typing import Any

FIRST_DELAY_S = 0.5  # upper bound of the jitter before reconnecting after a drop of a healthy connection
CAP_S = 30.0


@dataclass
class ReconnectPolicy:
    """Counts connects and reconnects, times disconnected spans and says how long to wait next."""

    max_failures: int = 8
    base_s: float = 0.5
    cap_s: float = CAP_S
    connects: int = 0  # connections that reached the subscribed state
    reconnects: int = 0  # attempts made after a connection was lost or failed
    failures: int = 0  # consecutive attempts that failed before subscribing
    longest_disconnected_s: float = 0.0
    ever_subscribed: bool = False
    _down_since: float | None = field(default=None, repr=False)
    _clock: Any = field(default=time.monotonic, repr=False)

    def subscribed(self) -> None:
        """A connection is authenticated and subscribed: the backoff starts afresh."""
        self.connects += 1
        self.failures = 0
        self.ever_subscribed = True
        if self._down_since is not None:
            self.longest_disconnected_s = max(self.longest_disconnected_s, self._clock() - self._down_since)
            self._down_since = None

    def lost(self, streamed: bool) -> float | None:
        """A connection ended (``streamed``: it had subscribed). The delay before the next attempt, or
        None when a client that never subscribed has used up its attempts."""
        if self._down_since is None:
            self._down_since = self._clock()
        if streamed:
            self.failures = 0
        else:
            self.failures += 1
            if not self.ever_subscribed and self.failures > self.max_failures:
                return None
        self.reconnects += 1
        return self.delay()

    def delay(self) -> float:
        """Up to ``FIRST_DELAY_S`` after a healthy drop; then ``base * 2**n`` with full jitter, capped."""
        if self.failures == 0:
            return random.uniform(0.0, min(FIRST_DELAY_S, self.cap_s))
        return random.uniform(self.base_s, min(self.cap_s, self.base_s * 2**self.failures))

    def disconnected_s(self) -> float:
        """The longest disconnected span so far, counting the current one while it lasts."""
        current = 0.0 if self._down_since is None else self._clock() - self._down_since
        return max(self.longest_disconnected_s, current)

    def as_dict(self) -> dict[str, Any]:
        return {
            "connects": self.connects,
            "reconnects": self.reconnects,
            "longest_disconnected_s": round(self.disconnected_s(), 3),
        }
