"""ClickHouse's side of `rtfin verify`: aggregate queries over the raw tables' source positions and the marts.

Every query aggregates in ClickHouse and returns per partition a handful of numbers or a bounded list of
ranges; no raw row is pulled into Python. The offset range checked per partition is a literal
``Map(Int32, Int64)`` built from integers Kafka returned (never from user text); the topic is a parameter.
Rows loaded before the positions had a topic (``_topic = ''``) count for the table's one topic.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from rtfin_cli.warehouse.ddl import ident

if TYPE_CHECKING:
    from clickhouse_connect.driver.client import Client

MAX_GAPS = 10_000  # gap ranges listed per table (their total is always exact)
MAX_DUPLICATES = 100  # duplicated offsets listed per partition
SAMPLE = 5  # identities named per mart
# The identity of a raw row (the tables' ORDER BY) as one string, in SQL and from a record's JSON.
IDENTITY_SQL = {"news": "id", "news_sentiment": "id", "stock_aggs": "concat(sym, '|', ev, '|', toString(s))"}
IDENTITY_FIELDS = {"news": ("id",), "news_sentiment": ("id",), "stock_aggs": ("sym", "ev", "s")}


@dataclass
class Summary:
    offsets: int = 0  # distinct offsets present in the checked range
    first: int = -1
    last: int = -1
    repeated: int = 0  # offsets more than one row holds before deduplication (candidates for duplicates)


def _map(bounds: dict[int, int]) -> str:
    pairs = ", ".join(f"{int(p)}, {int(o)}" for p, o in sorted(bounds.items()))
    return f"CAST(map({pairs}), 'Map(Int32, Int64)')"


def in_range(bounds: dict[int, tuple[int, int]]) -> str:
    """The condition selecting the rows of the checked partitions and offset ranges of the table's topic."""
    parts = ", ".join(str(int(p)) for p in sorted(bounds))
    starts, ends = _map({p: b[0] for p, b in bounds.items()}), _map({p: b[1] for p, b in bounds.items()})
    return (
        f"_topic IN ({{topic:String}}, '') AND _partition IN ({parts}) "
        f"AND _offset >= {starts}[_partition] AND _offset < {ends}[_partition]"
    )


def summaries(
    client: Client, raw: str, table: str, topic: str, bounds: dict[int, tuple[int, int]]
) -> dict[int, Summary]:
    """Per partition: distinct offsets present (in any row, merged or not), the first, the last, and how
    many offsets more than one row holds (only those can be duplicates after FINAL)."""
    rows = client.query(
        "SELECT _partition, count(), min(_offset), max(_offset), countIf(n > 1) FROM ("
        f" SELECT _partition, _offset, count() AS n FROM {ident(raw)}.{ident(table)} WHERE {in_range(bounds)}"
        " GROUP BY _partition, _offset) GROUP BY _partition",
        parameters={"topic": topic},
    ).result_rows
    return {int(p): Summary(int(n), int(lo), int(hi), int(rep)) for p, n, lo, hi, rep in rows}


def inner_gaps(
    client: Client, raw: str, table: str, topic: str, bounds: dict[int, tuple[int, int]]
) -> list[tuple[int, int, int]]:
    """(partition, first, last) of each run of absent offsets between two present ones (window function)."""
    rows = client.query(  # no DISTINCT: a repeated offset has a difference of 0, never a gap
        "SELECT p, prev + 1, o - 1 FROM ("
        " SELECT _partition AS p, _offset AS o, lagInFrame(_offset, 1, -1) OVER w AS prev"
        f" FROM {ident(raw)}.{ident(table)} WHERE {in_range(bounds)}"
        " WINDOW w AS (PARTITION BY _partition ORDER BY _offset ROWS BETWEEN 1 PRECEDING AND CURRENT ROW)"
        f") WHERE prev >= 0 AND o - prev > 1 ORDER BY p, o LIMIT {MAX_GAPS}",
        parameters={"topic": topic},
    ).result_rows
    return [(int(p), int(a), int(b)) for p, a, b in rows]


def duplicates(
    client: Client, raw: str, table: str, topic: str, bounds: dict[int, tuple[int, int]]
) -> dict[int, tuple[int, list[tuple[int, int]]]]:
    """Per partition: how many offsets more than one row holds after deduplication (FINAL), and some of
    them as (offset, rows)."""
    rows = client.query(
        f"SELECT _partition, count(), groupArray({MAX_DUPLICATES})((_offset, n)) FROM ("
        f" SELECT _partition, _offset, count() AS n FROM {ident(raw)}.{ident(table)} FINAL"
        f" WHERE {in_range(bounds)} GROUP BY _partition, _offset HAVING n > 1 ORDER BY _partition, _offset"
        ") GROUP BY _partition",
        parameters={"topic": topic},
    ).result_rows
    return {int(p): (int(n), [(int(o), int(c)) for o, c in sample]) for p, n, sample in rows}


def identities_present(client: Client, raw: str, table: str, keys: list[str]) -> set[str]:
    """Which of ``keys`` (identities as IDENTITY_SQL renders them) some row of ``table`` has."""
    if not keys:
        return set()
    rows = client.query(
        f"SELECT DISTINCT {IDENTITY_SQL[table]} AS k FROM {ident(raw)}.{ident(table)} WHERE k IN {{keys:Array(String)}}",
        parameters={"keys": keys},
    ).result_rows
    return {str(r[0]) for r in rows}


def kafka_errors(client: Client, raw: str, topics: list[str]) -> list[tuple[str, int, int]]:
    """(topic, partition, offset) the Kafka-engine views routed to ``kafka_errors`` (its dead letters)."""
    exists = client.command(
        "SELECT count() FROM system.tables WHERE database = {db:String} AND name = 'kafka_errors'",
        parameters={"db": raw},
    )
    if not int(str(exists)):
        return []
    rows = client.query(
        f"SELECT DISTINCT topic, partition, offset FROM {ident(raw)}.kafka_errors WHERE topic IN {{t:Array(String)}}",
        parameters={"t": topics},
    ).result_rows
    return [(str(t), int(p), int(o)) for t, p, o in rows]


# -- marts -------------------------------------------------------------------------------------------
_TICKED = "notEmpty(arrayFilter(x -> x != '', tickers))"  # fct_news_sentiment has a row per ticker
# raw table -> (mart, the absent-from-mart condition on a raw row, the mart's build horizon)
MARTS: dict[str, tuple[str, str, str]] = {
    "stock_aggs": (
        "fct_stock_bars",
        # a 64-bit hash of the identity: a set of UInt64 is ~4x faster than one of tuples; an absent bar is
        # hidden only if its hash equals one of the mart's n: n / 2^64 (5e-14 for 1M bars)
        "cityHash64(sym, ev, s) NOT IN "
        "(SELECT cityHash64(sym, ev, toUnixTimestamp64Milli(bar_start)) FROM {db}.fct_stock_bars)",
        "(SELECT max(loaded_at) FROM {db}.fct_stock_bars)",
    ),
    "news": (
        "fct_news_sentiment",
        f"{_TICKED} AND id NOT IN (SELECT article_id FROM {{db}}.fct_news_sentiment)",
        "{built}",
    ),
    "news_sentiment": (
        "fct_news_sentiment",
        f"id IN (SELECT id FROM {{raw}}.news WHERE {_TICKED} AND _loaded_at <= {{built}}) "
        "AND id NOT IN (SELECT article_id FROM {db}.fct_news_sentiment WHERE label IS NOT NULL)",
        "{built}",
    ),
}


def built_at(client: Client, db: str, mart: str) -> Any:
    """When ``mart`` was last rebuilt (its metadata time: dbt replaces a table model each build), or None."""
    rows = client.query(
        "SELECT metadata_modification_time FROM system.tables WHERE database = {db:String} AND name = {t:String}",
        parameters={"db": db, "t": mart},
    ).result_rows
    return rows[0][0] if rows else None


def absent_from_mart(
    client: Client, raw: str, db: str, table: str, topic: str, bounds: dict[int, tuple[int, int]]
) -> tuple[int, list[str]] | None:
    """(count, some identities) of deduplicated raw rows in the checked ranges, loaded before the mart's
    last build, that the mart lacks; None when the mart does not exist (dbt has not built it)."""
    mart, absent, horizon = MARTS[table]
    built = built_at(client, db, mart)
    if built is None:
        return None
    fill = {"db": ident(db), "raw": ident(raw), "built": "{built:DateTime('UTC')}"}
    rows = client.query(
        f"SELECT count(), groupArray({SAMPLE})(k) FROM (SELECT {IDENTITY_SQL[table]} AS k "
        f"FROM {ident(raw)}.{ident(table)} FINAL WHERE {in_range(bounds)} "
        f"AND _loaded_at <= {horizon.format(**fill)} AND {absent.format(**fill)})",
        parameters={"topic": topic, "built": built},
    ).result_rows
    n, sample = rows[0]
    return int(n), [str(k) for k in sample]
