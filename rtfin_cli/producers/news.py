"""`rtfin produce news`: /v2/reference/news into rtfin.news.raw, keyed by id, timestamp = published_utc.

The cursor lives in the topic itself. On start the producer reads the last record of every partition:
every article routed to partition p up to that record's time was delivered (one producer writes in
ascending time order and idempotent delivery keeps partition order), so the resume point is the *minimum*
over partitions of those times. It then collects the ids already in the topic from that point on and
queries ``published_utc.gte`` the resume point, skipping those ids: no gap and no duplicate after a crash,
a restart on another host, overlapping pages or articles sharing a timestamp.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from rtfin_cli.errors import UsageError
from rtfin_cli.kafka import clients
from rtfin_cli.producers.sink import KafkaSink, Stats, Ticker
from rtfin_cli.sources.news import NewsClient
from rtfin_cli.sources.records import InvalidRecord, dumps, iso_ms, news_record, now_iso

if TYPE_CHECKING:
    from rtfin_cli.report import Reporter
    from rtfin_cli.settings import KafkaSettings, RtfinSettings

log = logging.getLogger("rtfin.producers.news")


@dataclass
class NewsOptions:
    since_ms: int | None = None  # backfill from here (default: resume from the topic)
    until_ms: int | None = None  # stop at this published time (exclusive); implies one pass
    once: bool = False  # one pass over everything available, then exit
    interval_s: float | None = None  # seconds between polls (default polygon.poll_interval_s)
    tickers: list[str] | None = None  # only articles mentioning one of these


RETENTION_MARGIN_MS = 3_600_000  # an article must outlive scoring and loading: an hour inside retention


@dataclass
class Resume:
    start_ms: int
    seen: dict[str, int]  # ids already in the topic with published time >= start_ms
    source: str  # "topic", "empty topic", "--since"


def resume_point(
    kafka: KafkaSettings, topic: str, default_start_ms: int, since_ms: int | None = None
) -> Resume:
    """Where to start polling and which ids the topic already holds from there (see the module doc)."""
    from confluent_kafka import TopicPartition

    c = clients.consumer(kafka, group="rtfin-news-cursor", **{"enable.partition.eof": True})
    try:
        meta = c.list_topics(topic, timeout=kafka.timeout_s)
        parts = sorted(meta.topics[topic].partitions)
        marks = {p: c.get_watermark_offsets(TopicPartition(topic, p), timeout=kafka.timeout_s) for p in parts}
        filled = [p for p in parts if marks[p][1] > marks[p][0]]
        if since_ms is not None:
            start, source = since_ms, "--since"
        elif not filled:
            return Resume(default_start_ms, {}, "empty topic")
        else:
            last = _read(c, topic, {p: marks[p][1] - 1 for p in filled}, {p: marks[p][1] for p in filled})
            tails = [max((ts for _, ts, p2 in last if p2 == p), default=default_start_ms) for p in filled]
            start = min(tails) if len(filled) == len(parts) else min(default_start_ms, *tails)
            source = "topic"
        offsets = c.offsets_for_times(
            [TopicPartition(topic, p, start) for p in parts], timeout=kafka.timeout_s
        )
        begin = {tp.partition: tp.offset for tp in offsets if tp.offset >= 0}
        records = _read(c, topic, begin, {p: marks[p][1] for p in begin})
        return Resume(start, {key: ts for key, ts, _ in records if ts >= start}, source)
    finally:
        c.close()


def _read(c: Any, topic: str, begin: dict[int, int], end: dict[int, int]) -> list[tuple[str, int, int]]:
    """(key, timestamp, partition) of the records in [begin, end) of each partition."""
    return [
        (msg.key().decode() if msg.key() else "", msg.timestamp()[1], msg.partition())
        for msg in clients.read_range(c, topic, begin, end, deadline_s=120)
    ]


def check_retention(settings: RtfinSettings, starts: dict[str, int]) -> None:
    """Refuse a time (``starts``: {option: epoch ms}) older than the news topics keep: the records carry their
    publish time as Kafka timestamp, so the broker would delete them at its next retention check, before
    anything reads them."""
    from rtfin_cli.kafka.admin import retention_ms

    if not starts:
        return
    t = settings.kafka.topics
    kept = {
        n: ms for n, ms in retention_ms(settings.kafka, [t.news_raw, t.news_sentiment]).items() if ms >= 0
    }
    if not kept:
        return
    topic, keep = min(kept.items(), key=lambda kv: kv[1])
    earliest = int(time.time() * 1000) - keep + RETENTION_MARGIN_MS
    for what, start_ms in starts.items():
        if start_ms < earliest:
            raise UsageError(
                f"{what} {iso_ms(start_ms)} is older than {topic} keeps ({keep / 86_400_000:g} days, "
                "retention.ms): Kafka would delete those articles as soon as they are written",
                f"Use a time after {iso_ms(earliest)}, or raise retention.ms of {topic} "
                "(and kafka.topics.retention_ms).",
            )


def run_news(
    settings: RtfinSettings, opts: NewsOptions, stop: threading.Event, reporter: Reporter | None = None
) -> Stats:
    """Poll until stopped (or one pass with --once/--until); returns the final counters."""
    topic = settings.kafka.topics.news_raw
    stats = Stats(source="polygon.news")
    tick = Ticker(reporter, stats)
    sink = KafkaSink(settings.kafka, stats, [topic])
    default_start = int(time.time() * 1000 - settings.polygon.news_backfill_h * 3_600_000)
    given = {"--since": opts.since_ms, "--until": opts.until_ms}
    check_retention(settings, {what: ms for what, ms in given.items() if ms is not None})
    resume = resume_point(settings.kafka, topic, default_start, opts.since_ms)
    log.info(
        "news cursor %s (from %s), %d ids already in the topic from there",
        iso_ms(resume.start_ms),
        resume.source,
        len(resume.seen),
    )
    cursor, seen, dead = resume.start_ms, resume.seen, set[bytes]()
    wanted = {t.upper() for t in opts.tickers} if opts.tickers else None
    ticker = next(iter(wanted)) if wanted and len(wanted) == 1 else None
    interval = opts.interval_s if opts.interval_s is not None else settings.polygon.poll_interval_s
    client = NewsClient(settings.polygon, stop)
    try:
        while not stop.is_set():
            for page in client.pages(cursor, opts.until_ms, ticker):
                for raw in page:
                    cursor = max(cursor, _one(sink, topic, raw, seen, dead, wanted, stats))
                sink.poll()
                stats.retries = client.retries
                tick()
            sink.flush()
            tick(force=True)
            if opts.once or opts.until_ms is not None:
                break
            seen = {k: ts for k, ts in seen.items() if ts >= cursor}  # the next query is .gte cursor
            stop.wait(interval)
    finally:
        client.close()
        sink.flush()
        tick(force=True)
    return stats


def _one(
    sink: KafkaSink,
    topic: str,
    raw: Any,
    seen: dict[str, int],
    dead: set[bytes],
    wanted: set[str] | None,
    stats: Stats,
) -> int:
    """Produce one article unless already seen; returns its published time (0 for a dead letter)."""
    try:
        art_id, ts, record = news_record(raw, now_iso())
    except InvalidRecord as exc:
        payload = dumps(raw) if isinstance(raw, dict | list) else str(raw).encode()
        if payload not in dead:  # the same bad payload served again is dead-lettered once per run
            dead.add(payload)
            key = raw.get("id") if isinstance(raw, dict) and isinstance(raw.get("id"), str) else None
            sink.dead_letter(key, payload, str(exc))
        return 0
    if art_id in seen:
        stats.duplicates += 1
        return ts
    seen[art_id] = ts
    if wanted is None or wanted & {t.upper() for t in record["tickers"]}:
        sink.send(topic, art_id, dumps(record), ts)
        stats.last_event_ms = ts if stats.last_event_ms is None else max(stats.last_event_ms, ts)
    return ts
