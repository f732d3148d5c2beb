"""Market-data sources: the Polygon/Massive news REST client and the stocks WebSocket client."""
