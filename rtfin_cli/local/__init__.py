"""The local stack: Kafka (KRaft), ClickHouse endpoint (chDB), market replay, Superset, and a small supervisor."""
