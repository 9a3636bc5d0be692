-- What the beacon collects beyond the event type (issue 12): custom-event names and their
-- props, the destination of outbound clicks, and the per-section dwell of each engagement.
-- Before this migration the sink skipped these fields, so they were collected and lost.
--
-- props: scrubbed, at most 20 keys, values as strings (numbers and booleans too), so one
-- prop at a time can be a report dimension (`prop:<key>`).
-- outbound_url: origin + path of an outbound click (no query, no fragment).
-- section_names / section_ms: parallel arrays, one entry per section the reader saw during
-- the engagement (`sections` of the raw event, names scrubbed, bounded in count); a report
-- ARRAY JOINs them. Arrays rather than a second table: they arrive in one event, land in one
-- insert, expire with it (same TTL) and are erased with it (same customer_pid row).
-- ADD COLUMN keeps every existing row (they read as empty). Each statement runs on the local
-- table and, in a cluster, on the shard-spanning table in front of it (IF NOT EXISTS: in
-- single-node mode both names are the same table).
ALTER TABLE {{table:events}} {{on_cluster}}
    ADD COLUMN IF NOT EXISTS event_name LowCardinality(String) AFTER section,
    ADD COLUMN IF NOT EXISTS props Map(LowCardinality(String), String) AFTER event_name,
    ADD COLUMN IF NOT EXISTS outbound_url String AFTER props,
    ADD COLUMN IF NOT EXISTS section_names Array(LowCardinality(String)) AFTER outbound_url,
    ADD COLUMN IF NOT EXISTS section_ms Array(UInt32) AFTER section_names;

ALTER TABLE events {{on_cluster}}
    ADD COLUMN IF NOT EXISTS event_name LowCardinality(String) AFTER section,
    ADD COLUMN IF NOT EXISTS props Map(LowCardinality(String), String) AFTER event_name,
    ADD COLUMN IF NOT EXISTS outbound_url String AFTER props,
    ADD COLUMN IF NOT EXISTS section_names Array(LowCardinality(String)) AFTER outbound_url,
    ADD COLUMN IF NOT EXISTS section_ms Array(UInt32) AFTER section_names;
