-- The enriched event contract (DESIGN.md section 3): one row per accepted event.
--
-- Exactly-once: kafka_partition/kafka_offset let the sink skip a redelivered range after a
-- crash (it inserts each row once), so this stays a plain MergeTree and the aggregate views
-- fed from it (0004, 0005) count every event once without insert-dedup settings
-- (DESIGN §6). Duplicates produced upstream are dropped by event_id before landing.
--
-- ORDER BY (site_id, toDate(ts), event_type, ts): every read names one site and a date range
-- (filtered dashboard queries the rollups cannot answer, exports); event_type next because
-- most of them ask for one type (pageviews, e-mail opens, service requests).
-- Erasure and export look rows up by pseudonym: bloom-filter skip indexes on customer_pid,
-- visitor_id and session_id let them skip most granules instead of scanning everything.
-- Monthly partitions keep parts small enough for TTL merges to drop expired rows cheaply.
-- TTL: per purpose from retention.toml (e-mail opens 90 days, service requests 3 years,
-- the rest 13 months).
CREATE TABLE IF NOT EXISTS {{table:events}} {{on_cluster}}
(
    event_id UUID,
    event_type LowCardinality(String),
    site_id LowCardinality(String),
    ts DateTime64(3, 'UTC'),
    visitor_id String,
    session_id String,
    customer_pid String,
    path String,
    section LowCardinality(String),
    referrer_domain LowCardinality(String),
    utm_source LowCardinality(String),
    utm_medium LowCardinality(String),
    utm_campaign LowCardinality(String),
    country LowCardinality(String),
    isp LowCardinality(String),
    asn UInt32,
    device_type LowCardinality(String),
    device_brand LowCardinality(String),
    browser LowCardinality(String),
    browser_major LowCardinality(String),
    os LowCardinality(String),
    os_major LowCardinality(String),
    engaged_ms UInt32,
    scroll_pct UInt8,
    service_type LowCardinality(String),
    campaign_id LowCardinality(String),
    consent LowCardinality(String),
    is_bot UInt8,
    kafka_partition UInt16,
    kafka_offset UInt64,
    INDEX idx_customer_pid customer_pid TYPE bloom_filter(0.01) GRANULARITY 4,
    INDEX idx_visitor_id visitor_id TYPE bloom_filter(0.01) GRANULARITY 4,
    INDEX idx_session_id session_id TYPE bloom_filter(0.01) GRANULARITY 4
)
ENGINE = {{engine:MergeTree}}
PARTITION BY toYYYYMM(ts)
ORDER BY (site_id, toDate(ts), event_type, ts)
TTL {{ttl:events}};

-- Sharding by site: one site's events, sessions and rollups live on one shard, so a
-- dashboard query touches one shard's data and sessions never straddle shards.
{{distributed:events:cityHash64(site_id)}};
