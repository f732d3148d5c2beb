"""Producers: source records into Kafka (news and stocks), with cursor, dedup and dead letters."""
