-- The landing database: topics land here as they arrive (any ingestion mode).
CREATE DATABASE IF NOT EXISTS {{ raw }};
