"""Build lag snapshots: Kafka readings + the sliding window + pipeline stages + warehouse freshness."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from rtfin_cli.errors import ServiceUnavailable
from rtfin_cli.lag.model import (
    IDLE,
    LAGGING,
    MISSING,
    OK,
    STALLED,
    UNREACHABLE,
    GroupLag,
    Hop,
    PartitionLag,
    Snapshot,
    Stage,
    TableAge,
    Thresholds,
    Window,
    partition_state,
    rates,
    row_state,
    worst,
)
from rtfin_cli.lag.offsets import NO_MESSAGE, GroupInfo, KafkaProbe, KafkaReading
from rtfin_cli.lag.producers import age_s, news_state, stocks_state
from rtfin_cli.lag.source import SourceClock, SourceProbe

if TYPE_CHECKING:
    from rtfin_cli.lag.warehouse import FreshnessProbe
    from rtfin_cli.settings import RtfinSettings


@dataclass
class Options:
    groups: list[str] = field(default_factory=list)  # only these groups (empty: all)
    topics: list[str] = field(default_factory=list)  # only these topics (empty: all)
    only_lagging: bool = False
    pipeline: bool = True  # the pipeline's stages and the warehouse
    window_s: float = 30.0
    settle_s: float = 2.0  # watched this long without progress, a long-waiting partition is STALLED
    hops: bool = False  # per-hop p50/p95 from the warehouse (`--hops`)
    thresholds: Thresholds = field(default_factory=Thresholds)  # LAGGING thresholds of the view
    check: Thresholds = field(default_factory=Thresholds)  # explicit --max-lag/--max-age: the exit code


class Monitor:
    """Takes snapshots; keeps clients and the window between them (one per live view)."""

    def __init__(
        self,
        settings: RtfinSettings,
        opts: Options,
        kafka: KafkaProbe | None = None,
        freshness: FreshnessProbe | None = None,
    ) -> None:
        self.s = settings
        self.opts = opts
        self.kafka = kafka or KafkaProbe(settings.kafka)
        self.window = Window(opts.window_s)
        self.source = SourceProbe(settings.polygon)
        self.clock = SourceClock(time.time())
        self.freshness = freshness
        if freshness is None and opts.pipeline:
            from rtfin_cli.lag.warehouse import FreshnessProbe

            self.freshness = FreshnessProbe(settings.clickhouse)

    @property
    def pipeline_groups(self) -> list[str]:
        """The sentiment job's group and the consumer group(s) of the configured ingest mode."""
        return [self.s.sentiment.group, *self.s.ingest_groups()]

    def close(self) -> None:
        self.kafka.close()
        if self.freshness is not None:
            self.freshness.close()

    def once(self) -> Snapshot:
        """A snapshot with rates and progress: two readings ``settle_s`` apart (what `--once` shows)."""
        self.snapshot()
        time.sleep(self.opts.settle_s)  # the whole settle time between the two readings
        return self.snapshot()

    def snapshot(self) -> Snapshot:
        t0 = time.time()
        o, topics = self.opts, self.s.kafka.topics
        include = self.pipeline_groups if o.pipeline else []
        produced = [topics.news_raw, topics.stocks_aggs] if o.pipeline else []
        kafka: dict[str, Any] = {"bootstrap": self.s.kafka.bootstrap, "status": "ok", "error": ""}
        reading: KafkaReading | None = None
        try:
            reading = self.kafka.read(o.groups or None, include, [*o.topics, *produced], produced)
        except ServiceUnavailable as exc:
            kafka.update(status="unreachable", error=exc.message)
        newest_news = reading.newest_ms.get(topics.news_raw) if reading else None
        self.clock = self.source.read(newest_news / 1000.0 if newest_news is not None else None)
        all_rows = self._rows(reading) if reading else []
        rows = [r for r in all_rows if self._selected(r)]
        if reading:
            rows += self._missing(reading, rows)
        if o.only_lagging:
            rows = [r for r in rows if r.lag > 0 or r.state != OK]
        snap = Snapshot(t0, 0.0, kafka, rows, clock=self.clock.as_dict(), thresholds=o.thresholds)
        if o.pipeline:
            snap.stages = self._stages(reading, all_rows)
            if self.freshness is not None:
                wh = self.freshness.read(self.clock.now, self.clock.speed)
                snap.warehouse = wh
                snap.stages += [_table_stage(t) for t in wh.tables]
                if wh.status != "ok":
                    snap.stages.append(Stage("warehouse", wh.endpoint, UNREACHABLE, detail=wh.error))
                elif o.hops:
                    snap.hops = self._hops()
        snap.exceeded = self._exceeded(rows)
        snap.took_s = time.time() - t0
        return snap

    def _hops(self) -> list[Hop]:
        """Per-hop latency over the window (nothing when the warehouse cannot answer the query)."""
        from rtfin_cli.lag.hops import read_hops

        assert self.freshness is not None
        try:
            raw = self.s.clickhouse.raw_database
            return read_hops(self.freshness.client(), raw, self.opts.window_s, time.time(), self.clock)
        except Exception:  # noqa: BLE001 - a failed hops query must not end the view
            return []

    # -- rows ------------------------------------------------------------------------------------
    def _selected(self, row: GroupLag) -> bool:
        o = self.opts
        return (not o.groups or row.group in o.groups) and (not o.topics or row.topic in o.topics)

    def _rows(self, r: KafkaReading) -> list[GroupLag]:
        seen: set[tuple[str, str, int]] = set()
        rows = []
        for info in r.groups.values():
            if info.error and not info.committed:
                if not self.opts.groups:  # requested groups are reported by _missing
                    rows.append(GroupLag(info.group, "-", state=UNREACHABLE, detail=info.error))
                continue
            for topic in sorted({t for t, _ in info.committed} | set(info.members_by_topic)):
                if topic in r.partitions:
                    rows.append(self._row(r, info, topic, seen))
        self.window.forget_missing(seen)
        return rows

    def _row(self, r: KafkaReading, info: GroupInfo, topic: str, seen: set[tuple[str, str, int]]) -> GroupLag:
        now = time.time()
        members = info.members_by_topic.get(topic, 0)
        if not info.members_by_topic:  # assignments not reported (e.g. another protocol): the group's count
            members = info.members
        row = GroupLag(info.group, topic, members=members, group_state=info.state)
        consumed = produced = 0
        dt: float | None = None
        for p in range(r.partitions[topic]):
            key = (info.group, topic, p)
            seen.add(key)
            part, delta = self._partition(r, info, key, now)
            if delta is not None:
                dt = delta[0]
                consumed, produced = consumed + delta[1], produced + delta[2]
            row.partitions.append(part)
            row.lag += part.lag
            row.time_lag_s = max(row.time_lag_s, part.time_lag_s)
        if dt:
            row.consume_rate, row.produce_rate, row.trend, row.eta_s = rates(dt, consumed, produced, row.lag)
        row.state = row_state(row, self.opts.window_s, self.opts.thresholds)
        row.detail = self._detail(row)
        return row

    def _partition(
        self, r: KafkaReading, info: GroupInfo, key: tuple[str, str, int], now: float
    ) -> tuple[PartitionLag, tuple[float, int, int] | None]:
        """One partition of a row, observed into the window; with the window's advance (None: too soon)."""
        _, topic, p = key
        committed = info.committed.get((topic, p))
        end = r.ends.get((topic, p), 0)
        base = committed if committed is not None else r.starts.get((topic, p), end)
        lag = max(0, end - base)
        ts = r.head_ms.get((topic, p, base)) if lag else None
        if ts == NO_MESSAGE:  # what is left is transaction markers: nothing to consume
            lag, ts = 0, None
        time_lag = (self.clock.now - ts / 1000.0) / self.clock.speed if ts is not None else 0.0
        self.window.observe(key, r.taken_at, base, end)
        part = PartitionLag(
            p, committed, end, lag, round(time_lag, 3), stalled_s=self.window.stalled_s(key, now)
        )
        delta = self.window.delta(key)
        if delta is not None:
            part.consume_rate, part.produce_rate, part.trend, part.eta_s = rates(*delta, lag)
        part.state = partition_state(part, self.opts.window_s, self.opts.thresholds, self.opts.settle_s)
        return part, delta

    def _detail(self, row: GroupLag) -> str:
        """Why a row is not OK, in a few words ('' when it is)."""
        stalled = [p for p in row.partitions if p.state == STALLED]
        if stalled:
            waited = max(max(p.stalled_s, p.time_lag_s) for p in stalled)
            who = "" if row.members else " (no active members)"
            return f"{len(stalled)} partition(s) without progress for {waited:.0f}s{who}"
        if row.state == LAGGING:
            return "; ".join(self.opts.thresholds.exceeded(row.lag, row.time_lag_s))
        return ""

    def _missing(self, r: KafkaReading, rows: list[GroupLag]) -> list[GroupLag]:
        out = []
        for g in self.opts.groups:
            info = r.groups.get(g)
            if info is not None and info.error and not any(row.group == g for row in rows):
                out.append(GroupLag(g, "-", state=UNREACHABLE, detail=f"group {g}: {info.error}"))
            elif info is None or not info.exists:
                out.append(GroupLag(g, "-", state=MISSING, detail=f"consumer group {g} not found"))
            elif not any(row.group == g for row in rows):
                wanted = ", ".join(self.opts.topics)
                out.append(
                    GroupLag(g, wanted or "-", state=MISSING, detail=f"group {g} has no offsets on {wanted}")
                )
        for t in self.opts.topics:
            if t not in r.partitions:
                out.append(GroupLag("-", t, state=MISSING, detail=f"topic {t} not found"))
        return out

    def _exceeded(self, rows: list[GroupLag]) -> list[str]:
        check = self.opts.check
        if check.max_lag is None and check.max_age_s is None:
            return []
        out = []
        for row in rows:
            if row.state in (MISSING, UNREACHABLE):
                out.append(f"{row.group}/{row.topic}: {row.detail}")
            elif why := check.exceeded(row.lag, row.time_lag_s):
                out.append(f"{row.group}/{row.topic}: {', '.join(why)}")
        return out

    # -- pipeline stages -------------------------------------------------------------------------
    def _stages(self, r: KafkaReading | None, rows: list[GroupLag]) -> list[Stage]:
        t = self.s.kafka.topics
        if r is None:
            return [Stage(n, src, UNREACHABLE) for n, src in self._kafka_stage_names()]
        stages = [
            self._producer(r, "news producer", t.news_raw),
            self._producer(r, "stocks producer", t.stocks_aggs),
        ]
        stages.append(self._consumer(r, rows, "sentiment job", self.s.sentiment.group, [t.news_raw]))
        name = _loader_stage_name(self.s.clickhouse.ingest)
        for group, topics in self.s.ingest_groups().items():
            stages.append(self._consumer(r, rows, name, group, topics))
        return stages

    def _kafka_stage_names(self) -> list[tuple[str, str]]:
        t = self.s.kafka.topics
        return [
            ("news producer", t.news_raw),
            ("stocks producer", t.stocks_aggs),
            ("sentiment job", self.s.sentiment.group),
            *(("loader", group) for group in self.s.ingest_groups()),
        ]

    def _producer(self, r: KafkaReading, name: str, topic: str) -> Stage:
        if topic not in r.partitions:
            return Stage(name, topic, MISSING, detail=f"topic {topic} not found (run `rtfin topics create`)")
        end = sum(r.ends.get((topic, p), 0) for p in range(r.partitions[topic]))
        key = ("", topic, -1)
        self.window.observe(key, r.taken_at, end, end)
        delta = self.window.delta(key)
        rate = f"{delta[2] / delta[0]:.1f} msg/s" if delta else "rate: measuring"
        newest = r.newest_ms.get(topic)
        if newest is None:
            return Stage(name, topic, IDLE, detail="no messages yet")
        stage = Stage(name, topic, OK, newest=newest / 1000.0)
        stage.age_s = round(age_s(stage.newest, self.clock), 3)  # type: ignore[arg-type]
        moved = bool(delta and delta[2] > 0)
        if topic == self.s.kafka.topics.stocks_aggs:
            stage.state, why = stocks_state(newest / 1000.0, self.clock, self.opts.window_s, moved)
        else:
            poll = self.s.polygon.poll_interval_s
            stage.state, why = news_state(newest / 1000.0, self.clock, self.opts.window_s, moved, poll)
        ahead = f"newest event {-stage.age_s:.0f}s ahead of the clock; " if stage.age_s < 0 else ""
        stage.detail = f"{ahead}{why + '; ' if why else ''}{end} messages, {rate}"
        return stage

    def _consumer(
        self, r: KafkaReading, rows: list[GroupLag], name: str, group: str, topics: list[str]
    ) -> Stage:
        mine = [row for row in rows if row.group == group and row.topic in topics]
        info = r.groups.get(group)
        if not mine:
            why = "not found" if info is None or not info.exists else "has no offsets on " + ", ".join(topics)
            return Stage(name, group, MISSING, detail=f"group {group} {why}")
        stage = Stage(name, group, worst([row.state for row in mine]))
        stage.lag = sum(row.lag for row in mine)
        stage.time_lag_s = max(row.time_lag_s for row in mine)
        stage.detail = "; ".join(
            f"{row.topic}: {row.state}{' ' + row.detail if row.detail else ''}" for row in mine
        )
        return stage


def _loader_stage_name(ingest: str) -> str:
    """The pipeline stage that loads Kafka into the warehouse, named after the ingest mode."""
    return "loader (ClickPipes)" if ingest == "clickpipes" else f"loader ({ingest})"


def _table_stage(t: TableAge) -> Stage:
    name = "warehouse" if not t.table.startswith("rpt_") else "reporting"
    return Stage(
        name,
        f"{t.database}.{t.table}.{t.column}",
        t.state,
        age_s=t.age_s,
        newest=t.newest,
        detail=t.detail or f"{t.rows} rows",
    )
