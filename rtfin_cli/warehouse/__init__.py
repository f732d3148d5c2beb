"""ClickHouse warehouse: client factory, versioned DDL, ingestion modes (ClickPipes, Kafka engine, loader)."""
