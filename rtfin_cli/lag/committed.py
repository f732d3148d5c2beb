"""Committed offsets of consumer groups, read through one consumer per group.

Why not ``AdminClient.list_consumer_group_offsets``: librdkafka (2.16 included, confluentinc/librdkafka#5040)
answers an OffsetFetch response of NOT_COORDINATOR — what a restarted broker says while it takes its group
coordinator role back — by queueing a coordinator query on the client's own consumer group. An admin client
has none, so the query goes to a NULL pointer and the whole process dies with SIGSEGV (``rtfin lag`` did,
every few broker restarts). A consumer whose ``group.id`` is the group has that consumer-group object: it
re-queries the coordinator and retries. It never subscribes, so it never joins the group or commits.
"""

from __future__ import annotations

from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

from rtfin_cli.kafka.clients import consumer

if TYPE_CHECKING:
    from confluent_kafka import Consumer

    from rtfin_cli.settings import KafkaSettings

TP = tuple[str, int]
MAX_CLIENTS = 64  # groups whose client is kept between snapshots (the least recently read are closed)
MAX_THREADS = 8


def _err(exc: BaseException) -> str:
    arg = exc.args[0] if exc.args else exc
    return str(arg.str()) if hasattr(arg, "str") else str(arg) or type(exc).__name__


class CommittedOffsets:
    """``fetch(groups, partitions)`` → per group its committed offsets, or the error text."""

    def __init__(self, kafka: KafkaSettings, timeout: float) -> None:
        self.kafka = kafka
        self.timeout = timeout
        self._clients: OrderedDict[str, Consumer] = OrderedDict()

    def _client(self, group: str) -> Consumer:
        c = self._clients.pop(group, None)
        if c is None:
            c = consumer(
                self.kafka,
                group=group,
                **{
                    "isolation.level": "read_uncommitted",  # committed offsets now: no wait on open transactions
                    "enable.auto.offset.store": False,
                    "socket.timeout.ms": int(self.timeout * 1000),
                },
            )
        self._clients[group] = c
        while len(self._clients) > MAX_CLIENTS:
            self._clients.popitem(last=False)[1].close()
        return c

    def fetch(self, groups: list[str], partitions: dict[str, int]) -> dict[str, dict[TP, int] | str]:
        """Offsets of every partition in ``partitions`` (topic → count) that each group has committed."""
        from confluent_kafka import TopicPartition

        tps = [TopicPartition(t, p) for t, n in sorted(partitions.items()) for p in range(n)]
        if not groups:
            return {}
        clients = {g: self._client(g) for g in groups}

        def one(group: str) -> dict[TP, int] | str:
            if not tps:
                return {}
            try:
                res = clients[group].committed(tps, timeout=self.timeout)
            except Exception as exc:  # noqa: BLE001 - KafkaException, or a timeout: reported per group
                return _err(exc)
            out: dict[TP, int] = {}
            for tp in res:
                if tp.error is None and tp.offset >= 0:
                    out[(tp.topic, tp.partition)] = tp.offset
            return out

        if len(groups) == 1:
            out = {groups[0]: one(groups[0])}
        else:
            with ThreadPoolExecutor(max_workers=min(MAX_THREADS, len(groups))) as pool:
                out = dict(zip(groups, pool.map(one, groups), strict=True))
        for group, res in out.items():
            if isinstance(
                res, str
            ):  # a client that failed across a broker restart may keep failing: a new one
                self._drop(group)
        return out

    def _drop(self, group: str) -> None:
        c = self._clients.pop(group, None)
        if c is not None:
            c.close()

    def close(self) -> None:
        while self._clients:
            self._clients.popitem()[1].close()
