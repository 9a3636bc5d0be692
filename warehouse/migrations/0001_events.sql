-- The enriched event contract (DESIGN.md section 3). One row per accepted event.
-- kafka_partition/kafka_offset let the sink skip a redelivered range after a crash
-- (exactly-once landing); ORDER BY serves the dashboards' "one site, a date range" scans.
CREATE TABLE IF NOT EXISTS events
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
    kafka_offset UInt64
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(ts)
ORDER BY (site_id, toDate(ts), event_type, ts)
TTL toDateTime(ts) + INTERVAL 13 MONTH;
