"""`rtfin lag`: live view of topic lag and data age (issue #9)."""

from __future__ import annotations

from rtfin_cli.cli.common import not_implemented


def lag() -> None:
    """Live view of consumer lag and end-to-end data age."""
    not_implemented("lag", 9)
