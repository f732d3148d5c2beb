"""The local servers: Kafka (KRaft), the ClickHouse endpoint (chDB), market replay and Superset, on a small supervisor."""
