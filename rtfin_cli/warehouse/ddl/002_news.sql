-- rtfin.news.raw as it lands. Identity: id. ReplacingMergeTree keeps the newest ingested_at per id
-- (readers use FINAL or argMax), so a replay never shows a duplicate.
CREATE TABLE IF NOT EXISTS {{ raw }}.news
(
    id String,
    published_utc DateTime64(3, 'UTC'),
    title String,
    description String DEFAULT '',
    article_url String DEFAULT '',
    author String DEFAULT '',
    publisher Tuple(name String, homepage_url String, logo_url String, favicon_url String),
    tickers Array(LowCardinality(String)),
    keywords Array(String),
    image_url String DEFAULT '',
    amp_url String DEFAULT '',
    ingested_at DateTime64(3, 'UTC'),
    _kafka_partition Int32 DEFAULT -1,
    _kafka_offset Int64 DEFAULT -1,
    _loaded_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree(ingested_at)
PARTITION BY toYYYYMM(published_utc)
ORDER BY id
{{ ttl('news') }}
SETTINGS index_granularity = 8192;
