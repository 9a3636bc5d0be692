-- Rejected events (the stream jobs' dead letters, topic mayak.failed): kept 30 days to fix
-- and replay (`mayak replay-failed`). `payload` is the event WITHOUT its secrets (no raw IP,
-- user agent, customer id): the stream jobs scrub it before it reaches the topic.
-- Columns written by the stream jobs' failed sink: failed_at, reason, step, site_id,
-- event_id, detail, payload, kafka_partition, kafka_offset (the latter two: exactly-once).
-- ORDER BY (reason, failed_at): operators look at one reason over recent days and replay
-- by reason.
CREATE TABLE IF NOT EXISTS {{table:failed_events}} {{on_cluster}}
(
    failed_at DateTime64(3, 'UTC'),
    reason LowCardinality(String),
    step LowCardinality(String),
    site_id LowCardinality(String),
    event_id String,
    detail String,
    payload String,
    kafka_partition UInt16,
    kafka_offset UInt64
)
ENGINE = {{engine:MergeTree}}
PARTITION BY toYYYYMMDD(failed_at)
ORDER BY (reason, failed_at)
TTL {{ttl:failed_events}};

{{distributed:failed_events:rand()}};

-- Bots never enter `events`; they are counted per site, day and bot family here (anonymous
-- counters, so kept like the other aggregates). SummingMergeTree folds the stream jobs'
-- increments (one row per batch and bot, `hits` = count) into one row per key on merge;
-- readers still sum(hits) because merges are eventual.
-- ORDER BY (site_id, day, bot): the dashboard asks "bots on site S over these days".
CREATE TABLE IF NOT EXISTS {{table:bot_hits}} {{on_cluster}}
(
    day Date,
    site_id LowCardinality(String),
    bot LowCardinality(String),
    hits UInt64
)
ENGINE = {{engine:SummingMergeTree(hits)}}
PARTITION BY toYYYYMM(day)
ORDER BY (site_id, day, bot)
TTL {{ttl:bot_hits}};

{{distributed:bot_hits:cityHash64(site_id)}};
