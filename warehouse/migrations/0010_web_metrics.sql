-- Web-only metrics (issue 12; definitions in warehouse/metrics.py). Visitors, visits and
-- bounces used to count every event type, so e-mail opens (which land on `/`) and service
-- requests inflated them. This migration adds web-only columns to the rollups and the
-- session aggregates and re-creates their views to fill them; 0011 backfills the rows
-- written before it. Web events are the beacon's types: pageview, engagement, custom,
-- outbound.
--
-- Rollups (agg_site_hourly, agg_dim_hourly, agg_dim_daily):
--   web_visitors, web_sessions: uniqCombined(12) states over web events only. They replace
--     the visitors/sessions states over every event type, which nothing reads any more: the
--     re-created views stop filling those (rows written before keep theirs; new rows hold
--     empty states), so the insert path merges no more sketches per row than before;
--   custom_events, outbound_clicks: counts;
--   engaged_ms from now on sums engagement events only (the only events that carry it).
-- sessions: web_events (web events of the session: 0 means the "session" is only e-mail
--   opens or service requests, not a visit) and interactions (custom events + outbound
--   clicks, which make a one-page visit not a bounce).
--
-- ADD COLUMN keeps every existing row; a new column reads as 0 / an empty state in rows
-- written before, until 0011 adds their values. Each ALTER runs on the local table and, in a
-- cluster, on the shard-spanning table in front of it (in single-node mode both are the same).
-- The views are dropped and re-created (same names, same target tables): migrations run
-- before the sink starts (worker start-up, `mayak migrate`), so no insert falls in between.
ALTER TABLE {{table:agg_site_hourly}} {{on_cluster}}
    ADD COLUMN IF NOT EXISTS web_visitors AggregateFunction(uniqCombined(12), String),
    ADD COLUMN IF NOT EXISTS web_sessions AggregateFunction(uniqCombined(12), String),
    ADD COLUMN IF NOT EXISTS custom_events SimpleAggregateFunction(sum, UInt64),
    ADD COLUMN IF NOT EXISTS outbound_clicks SimpleAggregateFunction(sum, UInt64);

ALTER TABLE agg_site_hourly {{on_cluster}}
    ADD COLUMN IF NOT EXISTS web_visitors AggregateFunction(uniqCombined(12), String),
    ADD COLUMN IF NOT EXISTS web_sessions AggregateFunction(uniqCombined(12), String),
    ADD COLUMN IF NOT EXISTS custom_events SimpleAggregateFunction(sum, UInt64),
    ADD COLUMN IF NOT EXISTS outbound_clicks SimpleAggregateFunction(sum, UInt64);

ALTER TABLE {{table:agg_dim_hourly}} {{on_cluster}}
    ADD COLUMN IF NOT EXISTS web_visitors AggregateFunction(uniqCombined(12), String),
    ADD COLUMN IF NOT EXISTS web_sessions AggregateFunction(uniqCombined(12), String),
    ADD COLUMN IF NOT EXISTS custom_events SimpleAggregateFunction(sum, UInt64),
    ADD COLUMN IF NOT EXISTS outbound_clicks SimpleAggregateFunction(sum, UInt64);

ALTER TABLE agg_dim_hourly {{on_cluster}}
    ADD COLUMN IF NOT EXISTS web_visitors AggregateFunction(uniqCombined(12), String),
    ADD COLUMN IF NOT EXISTS web_sessions AggregateFunction(uniqCombined(12), String),
    ADD COLUMN IF NOT EXISTS custom_events SimpleAggregateFunction(sum, UInt64),
    ADD COLUMN IF NOT EXISTS outbound_clicks SimpleAggregateFunction(sum, UInt64);

ALTER TABLE {{table:agg_dim_daily}} {{on_cluster}}
    ADD COLUMN IF NOT EXISTS web_visitors AggregateFunction(uniqCombined(12), String),
    ADD COLUMN IF NOT EXISTS web_sessions AggregateFunction(uniqCombined(12), String),
    ADD COLUMN IF NOT EXISTS custom_events SimpleAggregateFunction(sum, UInt64),
    ADD COLUMN IF NOT EXISTS outbound_clicks SimpleAggregateFunction(sum, UInt64);

ALTER TABLE agg_dim_daily {{on_cluster}}
    ADD COLUMN IF NOT EXISTS web_visitors AggregateFunction(uniqCombined(12), String),
    ADD COLUMN IF NOT EXISTS web_sessions AggregateFunction(uniqCombined(12), String),
    ADD COLUMN IF NOT EXISTS custom_events SimpleAggregateFunction(sum, UInt64),
    ADD COLUMN IF NOT EXISTS outbound_clicks SimpleAggregateFunction(sum, UInt64);

ALTER TABLE {{table:sessions}} {{on_cluster}}
    ADD COLUMN IF NOT EXISTS web_events SimpleAggregateFunction(sum, UInt64) AFTER pageviews,
    ADD COLUMN IF NOT EXISTS interactions SimpleAggregateFunction(sum, UInt64) AFTER web_events;

ALTER TABLE sessions {{on_cluster}}
    ADD COLUMN IF NOT EXISTS web_events SimpleAggregateFunction(sum, UInt64) AFTER pageviews,
    ADD COLUMN IF NOT EXISTS interactions SimpleAggregateFunction(sum, UInt64) AFTER web_events;

DROP VIEW IF EXISTS {{table:sessions_mv}} {{on_cluster}};

CREATE MATERIALIZED VIEW IF NOT EXISTS {{table:sessions_mv}} {{on_cluster}}
TO {{table:sessions}} AS
SELECT
    site_id,
    toDate(ts) AS day,
    session_id,
    min(ts) AS started,
    max(ts) AS ended,
    toUInt64(count()) AS events,
    toUInt64(countIf(event_type = 'pageview')) AS pageviews,
    toUInt64(countIf(event_type IN ('pageview', 'engagement', 'custom', 'outbound')))
        AS web_events,
    toUInt64(countIf(event_type IN ('custom', 'outbound'))) AS interactions,
    toUInt64(sumIf(engaged_ms, event_type = 'engagement')) AS engaged_ms,
    argMinStateIf(path, ts, event_type = 'pageview') AS entry_path,
    argMaxStateIf(path, ts, event_type = 'pageview') AS exit_path,
    any(country) AS country,
    any(device_type) AS device_type
FROM {{table:events}}
WHERE session_id != ''
GROUP BY site_id, day, session_id;

DROP VIEW IF EXISTS {{table:agg_site_hourly_mv}} {{on_cluster}};

CREATE MATERIALIZED VIEW IF NOT EXISTS {{table:agg_site_hourly_mv}} {{on_cluster}}
TO {{table:agg_site_hourly}} AS
SELECT
    site_id,
    toStartOfHour(ts) AS hour,
    toUInt64(count()) AS events,
    toUInt64(countIf(event_type = 'pageview')) AS pageviews,
    toUInt64(countIf(event_type = 'email_open')) AS email_opens,
    toUInt64(countIf(event_type = 'service_request')) AS service_requests,
    toUInt64(countIf(event_type = 'custom')) AS custom_events,
    toUInt64(countIf(event_type = 'outbound')) AS outbound_clicks,
    toUInt64(sumIf(engaged_ms, event_type = 'engagement')) AS engaged_ms,
    uniqCombinedStateIf(12)(visitor_id, event_type = 'email_open') AS openers,
    uniqCombinedStateIf(12)(visitor_id,
        event_type IN ('pageview', 'engagement', 'custom', 'outbound')) AS web_visitors,
    uniqCombinedStateIf(12)(session_id, session_id != ''
        AND event_type IN ('pageview', 'engagement', 'custom', 'outbound')) AS web_sessions
FROM {{table:events}}
GROUP BY site_id, hour;

-- The dimension list is 0005's, unchanged: a dimension added to the view later must be
-- added here too (this statement replaces the whole view).
DROP VIEW IF EXISTS {{table:agg_dim_hourly_mv}} {{on_cluster}};

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
    toUInt64(countIf(event_type = 'custom')) AS custom_events,
    toUInt64(countIf(event_type = 'outbound')) AS outbound_clicks,
    toUInt64(sumIf(engaged_ms, event_type = 'engagement')) AS engaged_ms,
    uniqCombinedStateIf(12)(visitor_id, event_type = 'email_open') AS openers,
    uniqCombinedStateIf(12)(visitor_id,
        event_type IN ('pageview', 'engagement', 'custom', 'outbound')) AS web_visitors,
    uniqCombinedStateIf(12)(session_id, session_id != ''
        AND event_type IN ('pageview', 'engagement', 'custom', 'outbound')) AS web_sessions
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

DROP VIEW IF EXISTS {{table:agg_dim_daily_mv}} {{on_cluster}};

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
    sum(custom_events) AS custom_events,
    sum(outbound_clicks) AS outbound_clicks,
    sum(engaged_ms) AS engaged_ms,
    uniqCombinedMergeState(12)(openers) AS openers,
    uniqCombinedMergeState(12)(web_visitors) AS web_visitors,
    uniqCombinedMergeState(12)(web_sessions) AS web_sessions
FROM {{table:agg_dim_hourly}}
GROUP BY site_id, dimension, value, day;
