"""Kafka plumbing shared by every stage: clients, topic admin, offsets."""
