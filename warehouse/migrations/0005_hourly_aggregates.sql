-- Hourly rollups fed by materialized views on `events`; the dashboards read these instead
-- of raw events wherever a query has no cross-dimension filter (warehouse/query.py).
-- visitors/sessions/openers are uniqCombined(12) states, mergeable across hours, days and
-- shards; the counts are SimpleAggregateFunction(sum). Why uniqCombined(12), not uniq: a
-- dashboard range merges hundreds of states, and a `uniq` state is a list of up to 65,536
-- hashes whose merge costs one hash-set insert per stored hash (at 10 million events the
-- 30-day site summary merged ~7 million hashes: ~800 ms). uniqCombined(12) is exact up to
-- ~100 values, then a 4,096-register HyperLogLog (2.5 KB, ~1.6% standard error) whose merge
-- is a fixed register-wise max (same summary: ~35 ms; states 6x smaller on disk). The raw
-- events path (warehouse/query.py) uses the same function, so rollups and raw events agree. The MVs are safe without insert
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
    visitors AggregateFunction(uniqCombined(12), String),
    sessions AggregateFunction(uniqCombined(12), String),
    openers AggregateFunction(uniqCombined(12), String)
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
    uniqCombinedState(12)(visitor_id) AS visitors,
    uniqCombinedStateIf(12)(session_id, session_id != '') AS sessions,
    uniqCombinedStateIf(12)(visitor_id, event_type = 'email_open') AS openers
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
-- index_granularity = 256 (here and in agg_dim_daily): a row carries up to three 2.5 KB
-- sketches, and a read needs a few hundred rows of one dimension (or N top values), so
-- 8,192-row granules made it deserialize ~20 MB of neighbouring rows' sketches per granule
-- (10M events: section top-10 70 -> 45 ms, path top-10 150 -> 70-100 ms with 256).
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
    visitors AggregateFunction(uniqCombined(12), String),
    sessions AggregateFunction(uniqCombined(12), String),
    openers AggregateFunction(uniqCombined(12), String)
)
ENGINE = {{engine:AggregatingMergeTree}}
PARTITION BY toYYYYMM(hour)
ORDER BY (site_id, dimension, hour, value)
TTL {{ttl:agg_dim_hourly}}
SETTINGS index_granularity = 256;

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
    uniqCombinedState(12)(visitor_id) AS visitors,
    uniqCombinedStateIf(12)(session_id, session_id != '') AS sessions,
    uniqCombinedStateIf(12)(visitor_id, event_type = 'email_open') AS openers
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

-- Daily companion of agg_dim_hourly: the same (dimension, value) rows per UTC day, for the
-- whole days of a range (the read path takes the partial days at both ends, which depend on
-- the report time zone, from agg_dim_hourly). A high-cardinality dimension such as `path`
-- barely aggregates per hour (~one row per event), so a 30-day top-10 read ~0.5 million
-- hourly rows at 1 million events; per day it is ~24x fewer.
-- ORDER BY (site_id, dimension, value, day): a top-N query first sums one dimension over the
-- range (cheap columns), then merges the visitor states of the N winning values only; with
-- value before day those N values are N contiguous key ranges, so only their granules of the
-- heavy state columns are read. Monthly partitions bound the range read by the date.
-- Fed by a view on agg_dim_hourly's inserts (not on events): the 17-dimension fan-out runs
-- once, and this view folds the already-grouped hourly block by day.
CREATE TABLE IF NOT EXISTS {{table:agg_dim_daily}} {{on_cluster}}
(
    site_id LowCardinality(String),
    dimension LowCardinality(String),
    value String,
    day Date,
    events SimpleAggregateFunction(sum, UInt64),
    pageviews SimpleAggregateFunction(sum, UInt64),
    email_opens SimpleAggregateFunction(sum, UInt64),
    service_requests SimpleAggregateFunction(sum, UInt64),
    engaged_ms SimpleAggregateFunction(sum, UInt64),
    visitors AggregateFunction(uniqCombined(12), String),
    sessions AggregateFunction(uniqCombined(12), String),
    openers AggregateFunction(uniqCombined(12), String)
)
ENGINE = {{engine:AggregatingMergeTree}}
PARTITION BY toYYYYMM(day)
ORDER BY (site_id, dimension, value, day)
TTL {{ttl:agg_dim_daily}}
SETTINGS index_granularity = 256;

CREATE MATERIALIZED VIEW IF NOT EXISTS {{table:agg_dim_daily_mv}} {{on_cluster}}
TO {{table:agg_dim_daily}} AS
SELECT
    site_id,
    dimension,
    value,
    toDate(hour) AS day,
    sum(events) AS events,
    sum(pageviews) AS pageviews,
    sum(email_opens) AS email_opens,
    sum(service_requests) AS service_requests,
    sum(engaged_ms) AS engaged_ms,
    uniqCombinedMergeState(12)(visitors) AS visitors,
    uniqCombinedMergeState(12)(sessions) AS sessions,
    uniqCombinedMergeState(12)(openers) AS openers
FROM {{table:agg_dim_hourly}}
GROUP BY site_id, dimension, value, day;

{{distributed:agg_dim_daily:cityHash64(site_id)}};
