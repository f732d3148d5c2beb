"""The loader's bookkeeping: its running totals and the batch of records between two commits."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

from rtfin_cli.settings import RtfinSettings
from rtfin_cli.warehouse.records import Column, columns


@dataclass
class LoaderStats:
    consumed: int = 0
    inserted: dict[str, int] = field(
        default_factory=lambda: {"news": 0, "stock_aggs": 0, "news_sentiment": 0}
    )
    dead_lettered: int = 0
    batches: int = 0
    retries: int = 0
    commit_failures: int = 0
    elapsed_s: float = 0.0
    busy_s: float = 0.0  # from the first record consumed to the last commit (excludes group join)
    stopped_by: str = ""

    @property
    def rows(self) -> int:
        return sum(self.inserted.values())

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "rows": self.rows}


def topic_tables(settings: RtfinSettings) -> dict[str, str]:
    """{topic: raw table} of the three data topics."""
    return {topic: table for table, topic in settings.kafka.topics.by_table().items()}


def empty_columns(table: str) -> list[Column]:
    """One empty list per column of ``table``: the buffer of rows waiting for an insert."""
    return [[] for _ in columns(table)]


Rejected = list[tuple[int, int, str]]  # (partition, offset, reason) of rows ClickHouse refused


@dataclass(eq=False)
class Batch:
    """Records consumed since the previous batch: their last offsets, their messages (for the dead-letter
    topic) and the inserts handed to the insert thread for them."""

    msgs: dict[str, list[Any]]  # by table
    first_at: float = 0.0  # when its first record was taken
    records: int = 0
    offsets: dict[tuple[str, int], int] = field(default_factory=dict)
    submitted: int = 0
    # (table, rows, rejected) per insert, appended by the insert thread; None: the insert was abandoned
    results: list[tuple[str, int, Rejected] | None] = field(default_factory=list)

    @classmethod
    def new(cls, tables: Iterable[str]) -> Batch:
        return cls({t: [] for t in tables})

    def inserted(self) -> bool:
        return len(self.results) == self.submitted
