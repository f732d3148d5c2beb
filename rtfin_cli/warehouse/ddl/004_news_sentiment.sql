-- rtfin.news.sentiment as it lands. Identity: id; the newest scored_at wins (a re-score replaces).
CREATE TABLE IF NOT EXISTS {{ raw }}.news_sentiment
(
    id String,
    published_utc DateTime64(3, 'UTC'),
    title String DEFAULT '',
    tickers Array(LowCardinality(String)),
    label LowCardinality(String),
    score Float64,
    sentiment Float64,
    model LowCardinality(String) DEFAULT '',
    scored_at DateTime64(3, 'UTC'),
    _kafka_partition Int32 DEFAULT -1,
    _kafka_offset Int64 DEFAULT -1,
    _loaded_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree(scored_at)
PARTITION BY toYYYYMM(published_utc)
ORDER BY id
{{ ttl('news_sentiment') }}
SETTINGS index_granularity = 8192;
