-- The provider's per-ticker insights of an article (Massive's news `insights`: ticker, sentiment,
-- sentiment_reasoning), kept as they arrive; dbt gives one row per article x ticker with them.
ALTER TABLE {{ raw }}.news ADD COLUMN IF NOT EXISTS insights Array(Tuple(ticker String, sentiment String, sentiment_reasoning String)) AFTER amp_url;
-- The news Kafka-engine queue and its views were written without the column; `rtfin transform run`
-- re-creates them with it (the consumer group keeps its committed offsets in Kafka).
DROP VIEW IF EXISTS {{ raw }}.kafka_news_mv;
DROP VIEW IF EXISTS {{ raw }}.kafka_news_errors_mv;
DROP TABLE IF EXISTS {{ raw }}.kafka_news_queue;
