-- Backfill of 0010's web-only columns for the events already stored, so the web metrics
-- cover existing data too. Each INSERT writes rows that carry only the new columns (every
-- other measure 0 or an empty state): the tables are AggregatingMergeTree, so these rows
-- fold into the existing ones of the same key and change none of the old measures. The
-- inserts go through the plain names (on a cluster the shard-spanning tables, sharded by
-- site like events; run once, from one node), and the agg_dim_hourly insert feeds
-- agg_dim_daily through its view.
-- Rollup hours whose raw events already expired (events are kept 13 months, rollups 5
-- years) cannot be recomputed: their web-only columns stay empty.
-- Idempotent: an upgrade interrupted after some of these inserts (before the migration was
-- recorded) runs them all again. Each insert writes whole groups of its target's key, and
-- skips the keys that already carry a backfilled web figure (nothing else can have written
-- one yet: the worker migrates before it consumes); a key skipped for having none gets
-- only zeros and empty states again, which change nothing.
-- The sessions rows repeat the session's first/last time, country and device (min, max and
-- any of the same events: idempotent), so the session's other columns are unchanged.
INSERT INTO agg_site_hourly (site_id, hour, custom_events, outbound_clicks, web_visitors,
                             web_sessions)
SELECT
    site_id,
    toStartOfHour(ts) AS hour,
    toUInt64(countIf(event_type = 'custom')),
    toUInt64(countIf(event_type = 'outbound')),
    uniqCombinedStateIf(12)(visitor_id,
        event_type IN ('pageview', 'engagement', 'custom', 'outbound')),
    uniqCombinedStateIf(12)(session_id, session_id != ''
        AND event_type IN ('pageview', 'engagement', 'custom', 'outbound'))
FROM events
WHERE (site_id, toStartOfHour(ts)) GLOBAL NOT IN (
    SELECT site_id, hour FROM agg_site_hourly
    WHERE custom_events > 0 OR outbound_clicks > 0 OR finalizeAggregation(web_visitors) > 0)
GROUP BY site_id, hour;

INSERT INTO agg_dim_hourly (site_id, dimension, value, hour, custom_events, outbound_clicks,
                            web_visitors, web_sessions)
SELECT
    site_id,
    pair.1 AS dimension,
    pair.2 AS value,
    toStartOfHour(ts) AS hour,
    toUInt64(countIf(event_type = 'custom')),
    toUInt64(countIf(event_type = 'outbound')),
    uniqCombinedStateIf(12)(visitor_id,
        event_type IN ('pageview', 'engagement', 'custom', 'outbound')),
    uniqCombinedStateIf(12)(session_id, session_id != ''
        AND event_type IN ('pageview', 'engagement', 'custom', 'outbound'))
FROM events
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
WHERE (site_id, dimension, value, hour) GLOBAL NOT IN (
    SELECT site_id, dimension, value, hour FROM agg_dim_hourly
    WHERE custom_events > 0 OR outbound_clicks > 0 OR finalizeAggregation(web_visitors) > 0)
GROUP BY site_id, dimension, value, hour;

INSERT INTO sessions (site_id, day, session_id, started, ended, web_events, interactions,
                      country, device_type)
SELECT
    site_id,
    toDate(ts) AS day,
    session_id,
    min(ts),
    max(ts),
    toUInt64(countIf(event_type IN ('pageview', 'engagement', 'custom', 'outbound'))),
    toUInt64(countIf(event_type IN ('custom', 'outbound'))),
    any(country),
    any(device_type)
FROM events
WHERE session_id != ''
    AND (site_id, toDate(ts), session_id) GLOBAL NOT IN (
        SELECT site_id, day, session_id FROM sessions WHERE web_events > 0)
GROUP BY site_id, day, session_id;
