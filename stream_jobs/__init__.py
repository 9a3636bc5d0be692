"""Stream jobs: the Faust app that turns raw hits into enriched, private events in ClickHouse."""
