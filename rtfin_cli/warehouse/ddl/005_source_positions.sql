-- Every raw row names the Kafka record it came from: _topic, _partition, _offset (what `rtfin verify`
-- compares with the topic). The position columns of 002-004 take the names of the Kafka engine's and
-- ClickPipes' virtual columns; rows loaded before keep their positions and get _topic ''.
ALTER TABLE {{ raw }}.news RENAME COLUMN IF EXISTS _kafka_partition TO _partition, RENAME COLUMN IF EXISTS _kafka_offset TO _offset;
ALTER TABLE {{ raw }}.news ADD COLUMN IF NOT EXISTS _topic LowCardinality(String) DEFAULT '' AFTER ingested_at;
ALTER TABLE {{ raw }}.stock_aggs RENAME COLUMN IF EXISTS _kafka_partition TO _partition, RENAME COLUMN IF EXISTS _kafka_offset TO _offset;
ALTER TABLE {{ raw }}.stock_aggs ADD COLUMN IF NOT EXISTS _topic LowCardinality(String) DEFAULT '' AFTER ingested_at;
ALTER TABLE {{ raw }}.news_sentiment RENAME COLUMN IF EXISTS _kafka_partition TO _partition, RENAME COLUMN IF EXISTS _kafka_offset TO _offset;
ALTER TABLE {{ raw }}.news_sentiment ADD COLUMN IF NOT EXISTS _topic LowCardinality(String) DEFAULT '' AFTER scored_at;
-- Kafka-engine views written for the old names are dropped; `rtfin transform run` re-creates them (until
-- then the queue tables have no reader, so the engine consumes and commits nothing).
DROP VIEW IF EXISTS {{ raw }}.kafka_news_mv;
DROP VIEW IF EXISTS {{ raw }}.kafka_stock_aggs_mv;
DROP VIEW IF EXISTS {{ raw }}.kafka_news_sentiment_mv;
