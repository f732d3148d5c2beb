"""rtfin: drive a real-time finance data pipeline from one CLI."""

__version__ = "0.1.0"
