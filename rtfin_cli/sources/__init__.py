"""Market-data sources: Polygon/Massive REST and WebSocket clients and the validation of their payloads."""
