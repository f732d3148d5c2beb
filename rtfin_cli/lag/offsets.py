"""Read committed offsets, watermarks and message timestamps from Kafka in a few batched round trips.

One snapshot costs: metadata, list/describe groups, one offset fetch per group (concurrent, see
:mod:`rtfin_cli.lag.committed` for why through a consumer per group),
one ListOffsets per spec for every partition at once, and one fetch pass that reads the single message at
each lagging partition's committed offset (cached by offset: an unchanged commit is never read twice).
"""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Sequence
from concurrent import futures
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from rtfin_cli.errors import ServiceUnavailable
from rtfin_cli.kafka.clients import admin, consumer
from rtfin_cli.lag.committed import CommittedOffsets

if TYPE_CHECKING:
    from confluent_kafka import Consumer
    from confluent_kafka.admin import AdminClient

    from rtfin_cli.settings import KafkaSettings

TP = tuple[str, int]
READER_GROUP = "rtfin-lag-reader"  # never subscribes or commits: it only assigns and reads one message
CACHE_SIZE = 200_000
NO_MESSAGE = -1  # nothing to read at the committed offset: only transaction markers (or aborted data) follow


@dataclass
class GroupInfo:
    group: str
    state: str = ""  # Kafka's group state name
    members: int = 0
    members_by_topic: dict[str, int] = field(default_factory=dict)
    committed: dict[TP, int] = field(default_factory=dict)
    exists: bool = True
    error: str = ""


@dataclass
class KafkaReading:
    taken_at: float
    partitions: dict[str, int]  # topic → partition count (existing topics only)
    groups: dict[str, GroupInfo]
    ends: dict[TP, int]
    starts: dict[TP, int]  # only where a group has no committed offset
    head_ms: dict[tuple[str, int, int], int | None]  # (topic, partition, offset) → timestamp ms
    newest_ms: dict[str, int | None]  # topic → largest message timestamp (producer stages)


def _err(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError) and not exc.args:
        return "request timed out"
    arg = exc.args[0] if exc.args else exc
    return str(arg.str()) if hasattr(arg, "str") else str(arg)


class KafkaProbe:
    """Long-lived clients for repeated snapshots; reconnects by itself when the broker comes back."""

    def __init__(self, kafka: KafkaSettings, timeout: float | None = None) -> None:
        self.kafka = kafka
        self.timeout = timeout if timeout is not None else min(kafka.timeout_s, 5.0)
        self._admin: AdminClient | None = None
        self._retired: deque[AdminClient] = deque(maxlen=4)  # the oldest's requests timed out long ago
        self._reader: Consumer | None = None
        self._ts_cache: OrderedDict[tuple[str, int, int], int | None] = OrderedDict()
        self.committed = CommittedOffsets(kafka, self.timeout)

    # -- clients ---------------------------------------------------------------------------------
    @property
    def admin(self) -> AdminClient:
        if self._admin is None:
            self._admin = admin(self.kafka, **{"socket.timeout.ms": int(self.timeout * 1000)})
        return self._admin

    @property
    def reader(self) -> Consumer:
        if self._reader is None:
            self._reader = consumer(
                self.kafka,
                group=READER_GROUP,
                **{
                    "enable.auto.offset.store": False,
                    "enable.partition.eof": True,  # a partition with only transaction markers left ends the wait
                    "fetch.wait.max.ms": 10,
                    "max.partition.fetch.bytes": 1024,  # the broker still returns at least one batch
                    "queued.min.messages": 1,
                    "fetch.queue.backoff.ms": 5,  # else a full queue postpones the next fetch by 1 s
                    "queued.max.messages.kbytes": 4096,
                    "socket.timeout.ms": int(self.timeout * 1000),
                },
            )
        return self._reader

    def _unreachable(self, exc: BaseException) -> ServiceUnavailable:
        self._retire_admin()
        return ServiceUnavailable(f"Kafka at {self.kafka.bootstrap} is unreachable ({_err(exc)})")

    def _retire_admin(self) -> None:
        """Drop the admin client but keep a reference: destroying one with requests in flight is unsafe."""
        if self._admin is not None:
            self._retired.append(self._admin)
            self._admin = None

    def close(self) -> None:
        self.committed.close()
        if self._reader is not None:
            self._reader.close()
            self._reader = None
        self._admin = None

    # -- one reading -----------------------------------------------------------------------------
    def read(
        self,
        groups: list[str] | None,
        include: Sequence[str] = (),
        topics: Sequence[str] = (),
        newest: Sequence[str] = (),
    ) -> KafkaReading:
        """Offsets of ``groups`` (None: every group) plus ``include``; watermarks of their topics and
        of ``topics``; newest message timestamp of ``newest`` topics. ServiceUnavailable when down."""
        import time

        t0 = time.time()
        names, partitions = self._groups_and_topics(groups, include)
        infos = self._group_infos(names, partitions)
        wanted = _topics_of(infos) | set(topics) | set(newest)
        wanted &= set(partitions)
        all_tps = [(t, p) for t in sorted(wanted) for p in range(partitions[t])]
        no_commit = _without_commit(infos, partitions)
        ends, starts, newest_ms = self._watermarks(all_tps, no_commit, newest)
        heads = _heads(infos, no_commit, ends, starts)
        return KafkaReading(t0, partitions, infos, ends, starts, self.timestamps(heads), newest_ms)

    def _groups_and_topics(
        self, groups: list[str] | None, include: Sequence[str]
    ) -> tuple[list[str], dict[str, int]]:
        """The group names to read (listing every group when ``groups`` is None) and {topic: partitions}."""
        from confluent_kafka import KafkaException

        client = self.admin
        listing = client.list_consumer_groups(request_timeout=self.timeout) if groups is None else None
        try:
            meta = client.list_topics(timeout=self.timeout)
            if not meta.brokers:
                raise ServiceUnavailable(f"Kafka at {self.kafka.bootstrap} has no brokers")
            names = list(groups or [])
            if listing is not None:
                names += [g.group_id for g in listing.result(timeout=self.timeout).valid]
        except (KafkaException, TimeoutError) as exc:
            raise self._unreachable(exc) from None
        partitions = {name: len(t.partitions) for name, t in meta.topics.items() if t.error is None}
        return list(dict.fromkeys([*names, *include])), partitions

    def _group_infos(self, names: list[str], partitions: dict[str, int]) -> dict[str, GroupInfo]:
        """Members and state of each group (admin, concurrent futures) and its committed offsets on every
        topic (a consumer per group, see :mod:`rtfin_cli.lag.committed`), under one deadline."""
        infos = {g: GroupInfo(g) for g in names}
        if names:
            described = self.admin.describe_consumer_groups(names, request_timeout=self.timeout)
            user_topics = {t: n for t, n in partitions.items() if not t.startswith("__")}
            for g, res in self.committed.fetch(names, user_topics).items():
                if isinstance(res, str):
                    infos[g].error = res
                else:
                    infos[g].committed.update(res)
            futures.wait(list(described.values()), timeout=self.timeout)
            if _fill_descriptions(infos, described):
                self._retire_admin()  # after a broker restart a client can keep timing out: a new one next time
        for info in infos.values():
            info.exists = bool(info.committed or info.members) or info.state not in ("", "Dead", "Unknown")
            if info.state == "Dead" and not info.committed:
                info.exists = False
        return infos

    def _watermarks(
        self, all_tps: list[TP], no_commit: set[TP], newest: Sequence[str]
    ) -> tuple[dict[TP, int], dict[TP, int], dict[str, int | None]]:
        """(end offsets of ``all_tps``, start offsets of ``no_commit``, newest timestamp of ``newest``
        topics): one ListOffsets per spec for every partition, the three in flight together."""
        from confluent_kafka import KafkaException
        from confluent_kafka.admin import OffsetSpec  # type: ignore[attr-defined]

        latest, earliest, max_ts = OffsetSpec.latest(), OffsetSpec.earliest(), OffsetSpec.max_timestamp()  # type: ignore[no-untyped-call]
        newest_ms: dict[str, int | None] = {t: None for t in newest}
        try:
            f_end = self._ask_offsets(all_tps, latest)
            f_start = self._ask_offsets(sorted(no_commit), earliest)
            f_max = self._ask_offsets([tp for tp in all_tps if tp[0] in newest], max_ts)
            ends = {tp: f.result(timeout=self.timeout).offset for tp, f in f_end.items()}
            starts = {tp: f.result(timeout=self.timeout).offset for tp, f in f_start.items()}
            for (topic, _), f in f_max.items():
                info = f.result(timeout=self.timeout)
                if info.offset >= 0 and info.timestamp >= 0:
                    newest_ms[topic] = max(newest_ms[topic] or 0, info.timestamp)
        except (KafkaException, TimeoutError) as exc:
            raise self._unreachable(exc) from None
        return ends, starts, newest_ms

    def _ask_offsets(self, tps: Sequence[TP], spec: Any) -> dict[TP, Any]:
        """One ListOffsets request for every partition in ``tps`` (none when it is empty): futures by partition."""
        from confluent_kafka import TopicPartition

        if not tps:
            return {}
        req = {TopicPartition(t, p): spec for t, p in tps}
        return {
            (tp.topic, tp.partition): f
            for tp, f in self.admin.list_offsets(req, request_timeout=self.timeout).items()
        }

    def timestamps(self, wanted: set[tuple[str, int, int]]) -> dict[tuple[str, int, int], int | None]:
        """Timestamp (ms) of the message at each (topic, partition, offset), read once and cached."""
        out = {k: self._ts_cache[k] for k in wanted if k in self._ts_cache}
        todo = sorted(wanted - set(out))
        while todo:  # one offset per partition per round (a partition is assigned once)
            this_round: dict[TP, int] = {}
            rest = []
            for t, p, off in todo:
                if (t, p) in this_round:
                    rest.append((t, p, off))
                else:
                    this_round[(t, p)] = off
            out.update(self._read_round(this_round))
            todo = rest
        for k in wanted:
            if k in out and out[k] is not None and out[k] != NO_MESSAGE:
                self._ts_cache[k] = out[k]
                self._ts_cache.move_to_end(k)
        while len(self._ts_cache) > CACHE_SIZE:
            self._ts_cache.popitem(last=False)
        return out

    def _read_round(self, offsets: dict[TP, int]) -> dict[tuple[str, int, int], int | None]:
        import time

        from confluent_kafka import TIMESTAMP_NOT_AVAILABLE, KafkaError, KafkaException, TopicPartition

        c = self.reader
        got: dict[tuple[str, int, int], int | None] = {}
        pending = dict(offsets)
        try:
            c.assign([TopicPartition(t, p, off) for (t, p), off in offsets.items()])
            deadline = time.monotonic() + self.timeout
            while pending and time.monotonic() < deadline:
                done = []
                for msg in c.consume(num_messages=max(len(pending), 1), timeout=0.05):
                    key = (str(msg.topic()), int(msg.partition() or 0))
                    err = msg.error()
                    if err is not None and err.code() == KafkaError._PARTITION_EOF and key in pending:
                        got[(key[0], key[1], pending.pop(key))] = NO_MESSAGE
                        done.append(TopicPartition(*key))
                        continue
                    if err is not None or key not in pending or int(msg.offset() or 0) < pending[key]:
                        continue
                    kind, ts = msg.timestamp()
                    got[(key[0], key[1], pending.pop(key))] = None if kind == TIMESTAMP_NOT_AVAILABLE else ts
                    done.append(TopicPartition(*key))
                if done and pending:
                    c.incremental_unassign(done)
            c.unassign()
        except (KafkaException, TimeoutError):
            self._reader = None  # a fresh reader next time (the old one is closed when collected)
            c.close()
        for (t, p), off in pending.items():
            got[(t, p, off)] = None
        return got

    def describe(self) -> dict[str, Any]:
        return {"bootstrap": self.kafka.bootstrap, "cached_timestamps": len(self._ts_cache)}


def _fill_descriptions(infos: dict[str, GroupInfo], described: dict[str, Any]) -> bool:
    """State and members per topic of each described group; True if a request timed out."""
    from confluent_kafka import KafkaException

    timed_out = False
    for g, fut in described.items():
        try:
            desc = fut.result(timeout=0)
        except (KafkaException, TimeoutError) as exc:
            infos[g].error = _err(exc)
            timed_out = timed_out or isinstance(exc, TimeoutError)
            continue
        infos[g].state = desc.state.name.title().replace("_", "") if desc.state else ""
        infos[g].members = len(desc.members)
        for m in desc.members:
            assigned = {tp.topic for tp in (m.assignment.topic_partitions if m.assignment else [])}
            for topic in assigned:
                infos[g].members_by_topic[topic] = infos[g].members_by_topic.get(topic, 0) + 1
    return timed_out


def _topics_of(infos: dict[str, GroupInfo]) -> set[str]:
    """Topics any group has committed offsets on or members assigned to."""
    return {t for i in infos.values() for t, _ in i.committed} | {
        t for i in infos.values() for t in i.members_by_topic
    }


def _without_commit(infos: dict[str, GroupInfo], partitions: dict[str, int]) -> set[TP]:
    """Partitions of a group's topics where that group has no committed offset (lag counts from the start)."""
    return {
        (t, p)
        for i in infos.values()
        for t in {t for t, _ in i.committed} | set(i.members_by_topic)
        if t in partitions
        for p in range(partitions[t])
        if (t, p) not in i.committed
    }


def _heads(
    infos: dict[str, GroupInfo], no_commit: set[TP], ends: dict[TP, int], starts: dict[TP, int]
) -> set[tuple[str, int, int]]:
    """(topic, partition, offset) of the first unconsumed message wherever a group is behind."""
    heads = {
        (t, p, off)
        for i in infos.values()
        for (t, p), off in i.committed.items()
        if (t, p) in ends and off < ends[(t, p)]
    }
    heads |= {
        (t, p, starts[(t, p)])
        for t, p in no_commit
        if (t, p) in starts and starts[(t, p)] < ends.get((t, p), 0)
    }
    return heads
