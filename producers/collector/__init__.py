"""The collector: the ASGI front door that accepts hits and produces them to Kafka."""
