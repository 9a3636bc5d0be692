-- Hourly rollups fed by materialized views on `events`; the dashboards read these instead
-- of raw events wherever a query has no cross-dimension filter (warehouse/query.py).
-- visitors/sessions/openers are uniq states (HyperLogLog-style, mergeable across hours and
-- shards); the counts are SimpleAggregateFunction(sum). The MVs are safe without insert
-- dedup settings because the events sink inserts each row exactly once (see 0001).

-- Site totals per hour: the summary, the hourly series, and hour-of-day / weekday charts
-- (computed at read time in the portal's time zone from the UTC hour; Asia/Baku is a whole
-- hour offset). ORDER BY (site_id, hour): one site, a range of hours.
CREATE TABLE IF NOT EXISTS {{table:agg_site_hourly}} {{on_cluster}}
(
    site_id LowCardinality(String),
    hour DateTime('UTC'),
    events SimpleAggregateFunction(sum, UInt64),
    pageviews SimpleAggregateFunction(sum, UInt64),
    email_opens SimpleAggregateFunction(sum, UInt64),
    service_requests SimpleAggregateFunction(sum, UInt64),
    engaged_ms SimpleAggregateFunction(sum, UInt64),
    visitors AggregateFunction(uniq, String),
    sessions AggregateFunction(uniq, String),
    openers AggregateFunction(uniq, String)
)
ENGINE = {{engine:AggregatingMergeTree}}
PARTITION BY toYYYYMM(hour)
ORDER BY (site_id, hour)
TTL {{ttl:agg_site_hourly}};

CREATE MATERIALIZED VIEW IF NOT EXISTS {{table:agg_site_hourly_mv}} {{on_cluster}}
TO {{table:agg_site_hourly}} AS
SELECT
    site_id,
    toStartOfHour(ts) AS hour,
    toUInt64(count()) AS events,
    toUInt64(countIf(event_type = 'pageview')) AS pageviews,
    toUInt64(countIf(event_type = 'email_open')) AS email_opens,
    toUInt64(countIf(event_type = 'service_request')) AS service_requests,
    toUInt64(sum(engaged_ms)) AS engaged_ms,
    uniqState(visitor_id) AS visitors,
    uniqStateIf(session_id, session_id != '') AS sessions,
    uniqStateIf(visitor_id, event_type = 'email_open') AS openers
FROM {{table:events}}
GROUP BY site_id, hour;

{{distributed:agg_site_hourly:cityHash64(site_id)}};

-- One table for every single-dimension rollup (path, section, country, ISP, device, browser,
-- OS, service type, campaign, referrer, UTM...): (dimension, value) pairs instead of one
-- table per dimension, so a new dimension is one line in the view and one in the query
-- whitelist, not a migration per table. The view ARRAY JOINs each event into one row per
-- dimension; the in-block GROUP BY folds them.
-- ORDER BY (site_id, dimension, hour, value): the typical read is "top values of one
-- dimension for one site over a date range", which is one contiguous key range here;
-- a one-value series (filter value = X) reads the same range and skips by value.
CREATE TABLE IF NOT EXISTS {{table:agg_dim_hourly}} {{on_cluster}}
(
    site_id LowCardinality(String),
    dimension LowCardinality(String),
    value String,
    hour DateTime('UTC'),
    events SimpleAggregateFunction(sum, UInt64),
    pageviews SimpleAggregateFunction(sum, UInt64),
    email_opens SimpleAggregateFunction(sum, UInt64),
    service_requests SimpleAggregateFunction(sum, UInt64),
    engaged_ms SimpleAggregateFunction(sum, UInt64),
    visitors AggregateFunction(uniq, String),
    sessions AggregateFunction(uniq, String),
    openers AggregateFunction(uniq, String)
)
ENGINE = {{engine:AggregatingMergeTree}}
PARTITION BY toYYYYMM(hour)
ORDER BY (site_id, dimension, hour, value)
TTL {{ttl:agg_dim_hourly}};

CREATE MATERIALIZED VIEW IF NOT EXISTS {{table:agg_dim_hourly_mv}} {{on_cluster}}
TO {{table:agg_dim_hourly}} AS
SELECT
    site_id,
    pair.1 AS dimension,
    pair.2 AS value,
    toStartOfHour(ts) AS hour,
    toUInt64(count()) AS events,
    toUInt64(countIf(event_type = 'pageview')) AS pageviews,
    toUInt64(countIf(event_type = 'email_open')) AS email_opens,
    toUInt64(countIf(event_type = 'service_request')) AS service_requests,
    toUInt64(sum(engaged_ms)) AS engaged_ms,
    uniqState(visitor_id) AS visitors,
    uniqStateIf(session_id, session_id != '') AS sessions,
    uniqStateIf(visitor_id, event_type = 'email_open') AS openers
FROM {{table:events}}
ARRAY JOIN [
    ('event_type', toString(event_type)),
    ('path', path),
    ('section', toString(section)),
    ('referrer_domain', toString(referrer_domain)),
    ('utm_source', toString(utm_source)),
    ('utm_medium', toString(utm_medium)),
    ('utm_campaign', toString(utm_campaign)),
    ('country', toString(country)),
    ('isp', toString(isp)),
    ('device_type', toString(device_type)),
    ('device_brand', toString(device_brand)),
    ('browser', toString(browser)),
    ('browser_version', concat(toString(browser), ' ', toString(browser_major))),
    ('os', toString(os)),
    ('os_version', concat(toString(os), ' ', toString(os_major))),
    ('service_type', toString(service_type)),
    ('campaign_id', toString(campaign_id))
] AS pair
GROUP BY site_id, dimension, value, hour;

{{distributed:agg_dim_hourly:cityHash64(site_id)}};
