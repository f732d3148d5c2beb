-- rtfin.stocks.aggs as it lands. Identity: (sym, ev, s); s/e stay epoch ms as in the record.
-- Ordered by ticker then time: the dashboard filters by ticker and a time range.
CREATE TABLE IF NOT EXISTS {{ raw }}.stock_aggs
(
    ev LowCardinality(String),
    sym LowCardinality(String),
    s Int64,
    e Int64,
    o Float64,
    h Float64,
    l Float64,
    c Float64,
    v Float64,
    vw Float64 DEFAULT 0,
    av Float64 DEFAULT 0,
    a Float64 DEFAULT 0,
    z Float64 DEFAULT 0,
    otc Bool DEFAULT false,
    ingested_at DateTime64(3, 'UTC'),
    _kafka_partition Int32 DEFAULT -1,
    _kafka_offset Int64 DEFAULT -1,
    _loaded_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree(ingested_at)
PARTITION BY toYYYYMM(fromUnixTimestamp64Milli(s, 'UTC'))
ORDER BY (sym, ev, s)
{{ ttl('stock_aggs') }}
SETTINGS index_granularity = 8192;
