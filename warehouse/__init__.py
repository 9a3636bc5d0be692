"""The warehouse: ClickHouse schema (numbered migrations), retention, erasure and audit."""
