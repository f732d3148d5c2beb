"""`rtfin verify`: prove, per topic-partition, that every record Kafka retains up to the ingesting group's
committed offset is in its raw table, once, or on the dead-letter path, and that the marts hold every
raw identity loaded before their last build.

Per partition: the range is ``start`` (low watermark, or the first record at ``--since``) up to the
committed offset. ClickHouse counts the distinct ``_offset`` values present and lists the runs of absent
ones (window function); an absent offset is accounted for when it was dead-lettered (loader: the DLQ's
``rtfin-offset`` header; Kafka engine: ``kafka_errors``), when Kafka holds no record there (transaction
markers, aborted records), or when its record's identity is in the table under a newer version (the
ReplacingMergeTree kept the newer row, whose position is another offset). Only the absent offsets are
read back from Kafka, to tell these apart. An offset more than one row holds after FINAL is a duplicate.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from rtfin_cli.errors import UsageError
from rtfin_cli.settings import RtfinSettings
from rtfin_cli.warehouse import positions, verify_sql
from rtfin_cli.warehouse.client import errors

if TYPE_CHECKING:
    from clickhouse_connect.driver.client import Client
    from confluent_kafka import Message

MAX_PROBED = 100_000  # absent offsets read back from Kafka in one run; beyond, the rest stay unexplained
STAGES = {"loader": "loader"}  # ingest mode -> the rtfin-stage header of its dead letters


@dataclass
class PartitionResult:
    topic: str
    table: str
    partition: int
    start: int
    end: int  # exclusive: the committed offset
    high: int
    committed: int | None
    present: int = 0
    dead_lettered: int = 0
    superseded: int = 0  # loaded, then replaced by a newer version of the same identity
    no_record: int = 0  # offsets without a data record (transaction markers, aborted records)
    missing: int = 0
    missing_ranges: list[list[int]] = field(default_factory=list)
    duplicates: int = 0
    duplicate_offsets: list[list[int]] = field(default_factory=list)  # [offset, rows]
    unexplained: int = 0  # absent offsets not read back (over MAX_PROBED)
    expired: int = 0  # records the group had not read that retention deleted (committed below the low mark)

    @property
    def ok(self) -> bool:
        return not (self.missing or self.duplicates or self.unexplained or self.expired)


@dataclass
class MartResult:
    table: str
    mart: str
    built: str | None  # None: the mart does not exist yet
    absent: int = 0
    sample: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.absent == 0


@dataclass
class VerifyReport:
    mode: str
    since_ms: int | None
    partitions: list[PartitionResult] = field(default_factory=list)
    marts: list[MartResult] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(p.ok for p in self.partitions) and all(m.ok for m in self.marts)

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "mode": self.mode,
            "since_ms": self.since_ms,
            "partitions": [asdict(p) | {"ok": p.ok} for p in self.partitions],
            "marts": [asdict(m) | {"ok": m.ok} for m in self.marts],
        }


def selected_tables(settings: RtfinSettings, topics: list[str] | None) -> dict[str, str]:
    """{table: topic} of the data topics to verify (all three, or those named with --topic)."""
    by_table = settings.kafka.topics.by_table()
    if topics is None:
        return by_table
    unknown = [t for t in topics if t not in by_table.values()]
    if unknown or not topics:
        raise UsageError(
            f"--topic {', '.join(repr(t) for t in unknown) or 'needs a value'}: not a data topic",
            f"Use one of {', '.join(by_table.values())}.",
        )
    return {table: topic for table, topic in by_table.items() if topic in topics}


def verify(
    settings: RtfinSettings,
    topics: list[str] | None = None,
    since_ms: int | None = None,
    client: Client | None = None,
) -> VerifyReport:
    """Check every partition of the selected topics and the marts; the report says what does not match."""
    tables = selected_tables(settings, topics)
    ch = settings.clickhouse
    kept = positions.retained(settings, list(tables.values()), since_ms)
    if client is None:
        from rtfin_cli.warehouse.client import get_client

        client = get_client(settings)
    report = VerifyReport(ch.ingest, since_ms)
    with errors(ch, "verifying the raw tables"):
        dead = _DeadLetters(settings, client, list(tables.values()))
        for table, topic in tables.items():
            bounds = {p: (r.start, r.end) for (t, p), r in kept.items() if t == topic}
            results = [_result(topic, table, p, kept[(topic, p)]) for p in sorted(bounds)]
            _check_table(settings, client, table, topic, bounds, results, dead)
            report.partitions += results
            mart = verify_sql.absent_from_mart(client, ch.raw_database, ch.database, table, topic, bounds)
            built = verify_sql.built_at(client, ch.database, verify_sql.MARTS[table][0]) if mart else None
            report.marts.append(
                MartResult(
                    table, verify_sql.MARTS[table][0], str(built) if mart else None, *(mart or (0, []))
                )
            )
    return report


def _result(topic: str, table: str, part: int, r: positions.Retained) -> PartitionResult:
    res = PartitionResult(topic, table, part, r.start, r.end, r.high, r.committed)
    if r.committed is not None and r.committed < r.low:  # deleted before the group got to them: lost
        res.expired = r.low - r.committed
    return res


class _DeadLetters:
    """Positions of the selected topics that went to the ingest mode's dead-letter path, read once and
    only when some offset is absent (the dead-letter topic is read whole)."""

    def __init__(self, settings: RtfinSettings, client: Client, topics: list[str]) -> None:
        self.settings, self.client, self.topics = settings, client, topics
        self._positions: dict[positions.TP, set[int]] | None = None

    def of(self, tp: positions.TP) -> set[int]:
        if self._positions is None:
            self._positions = self._read()
        return self._positions.get(tp, set())

    def _read(self) -> dict[positions.TP, set[int]]:
        mode = self.settings.clickhouse.ingest
        if mode in STAGES:
            return positions.dead_letters(self.settings, STAGES[mode], self.topics)
        out: dict[positions.TP, set[int]] = {}
        if mode == "kafka-engine":
            for t, p, o in verify_sql.kafka_errors(
                self.client, self.settings.clickhouse.raw_database, self.topics
            ):
                out.setdefault((t, p), set()).add(o)
        return out  # ClickPipes keeps no per-record error log rtfin can read


def _check_table(
    settings: RtfinSettings,
    client: Client,
    table: str,
    topic: str,
    bounds: dict[int, tuple[int, int]],
    results: list[PartitionResult],
    dead: _DeadLetters,
) -> None:
    """Fill each partition's result: present offsets, absent ones explained or missing, duplicates."""
    bounds = {p: b for p, b in bounds.items() if b[1] > b[0]}
    if not bounds:
        return
    raw = settings.clickhouse.raw_database
    by_part = {r.partition: r for r in results}
    summary = verify_sql.summaries(client, raw, table, topic, bounds)
    absent: dict[int, list[tuple[int, int]]] = {p: [] for p in bounds}
    # the window-function gap query only over partitions with fewer offsets than their range
    holed = {p: b for p, b in bounds.items() if p in summary and summary[p].offsets < b[1] - b[0]}
    if holed:
        for p, first, last in verify_sql.inner_gaps(client, raw, table, topic, holed):
            absent[p].append((first, last))
    for p, (start, end) in bounds.items():
        s = summary.get(p)
        by_part[p].present = s.offsets if s else 0
        if s is None:
            absent[p] = [(start, end - 1)]
            continue
        if s.first > start:
            absent[p].insert(0, (start, s.first - 1))
        if s.last < end - 1:
            absent[p].append((s.last + 1, end - 1))
    repeated = {p: b for p, b in bounds.items() if p in summary and summary[p].repeated}
    if repeated:  # the FINAL query only where some offset has more than one row
        for p, (n, sample) in verify_sql.duplicates(client, raw, table, topic, repeated).items():
            by_part[p].duplicates, by_part[p].duplicate_offsets = n, [list(x) for x in sample]
    _explain(settings, client, table, topic, absent, by_part, dead)


def _explain(
    settings: RtfinSettings,
    client: Client,
    table: str,
    topic: str,
    absent: dict[int, list[tuple[int, int]]],
    by_part: dict[int, PartitionResult],
    dead: _DeadLetters,
) -> None:
    """Sort absent offsets into dead-lettered, no record, superseded and missing (read back from Kafka)."""
    probe: dict[positions.TP, list[tuple[int, int]]] = {}
    budget = MAX_PROBED
    for p, spans in absent.items():
        if not spans:
            continue
        res, dl = by_part[p], dead.of((topic, p))
        res.dead_lettered = sum(1 for o in dl if res.start <= o < res.end)
        for a, b in spans:
            n = b - a + 1
            if budget < n:
                res.unexplained += n
                continue
            budget -= n
            probe.setdefault((topic, p), []).append((a, b))
    keys: dict[tuple[int, int], str | None] = {}

    def note(msg: Message) -> None:
        keys[(msg.partition() or 0, msg.offset() or 0)] = _identity(table, msg.value())

    positions.read_ranges(settings, probe, note)
    present = verify_sql.identities_present(
        client, settings.clickhouse.raw_database, table, sorted({k for k in keys.values() if k})
    )
    for (_, p), spans in probe.items():
        res, dl = by_part[p], dead.of((topic, p))
        lost: list[int] = []
        for a, b in spans:
            for off in range(a, b + 1):
                if off in dl:
                    continue
                if (p, off) not in keys:
                    res.no_record += 1
                elif keys[(p, off)] in present:
                    res.superseded += 1
                else:
                    lost.append(off)
        res.missing, res.missing_ranges = len(lost), _ranges(lost)


def _identity(table: str, value: bytes | None) -> str | None:
    """A record's identity as verify_sql.IDENTITY_SQL renders it; None if the value has none."""
    try:
        doc = json.loads(value or b"")
        return "|".join(str(doc[f]) for f in verify_sql.IDENTITY_FIELDS[table])
    except (ValueError, TypeError, KeyError):
        return None


def _ranges(offsets: list[int]) -> list[list[int]]:
    """Sorted offsets as [first, last] runs."""
    out: list[list[int]] = []
    for off in offsets:
        if out and out[-1][1] == off - 1:
            out[-1][1] = off
        else:
            out.append([off, off])
    return out


LAST_FILE = "verify-last.json"  # under local.data_dir: the last result, for `rtfin local status`


def save_last(settings: RtfinSettings, report: VerifyReport) -> None:
    """Keep the last result (its verdict, when, and the failing partitions) beside the local stack's state."""
    import time

    path = settings.local.path(LAST_FILE)
    doc = report.as_dict()
    bad = [f"{p['topic']}[{p['partition']}]" for p in doc["partitions"] if not p["ok"]]
    summary = {"ok": report.ok, "at_ms": int(time.time() * 1000), "failing": bad}
    summary["absent_from_marts"] = sum(m["absent"] for m in doc["marts"])
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(summary), encoding="utf-8")
    except OSError:
        pass  # a read-only data dir does not change the verdict


def load_last(settings: RtfinSettings) -> dict[str, Any] | None:
    """The last saved result, or None when verify has not run here."""
    try:
        doc = json.loads(settings.local.path(LAST_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return doc if isinstance(doc, dict) else None
