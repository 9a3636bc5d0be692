-- Who is really there (issue 13): traffic channels, e-mail open classes, bot categories.
--
-- events: channel (direct / organic_search / paid_search / social / email / referral /
--   campaign) and source (Google, Yandex, Facebook, Telegram... for search and social; the
--   referrer domain for a referral; the mail proxy or scanner for a machine e-mail open), set
--   by stream_jobs/channels.py; open_class of e-mail opens (human / privacy_proxy /
--   image_proxy / scanner, stream_jobs/email_opens.py). Rows written before read as ''.
-- bot_hits: the stream jobs now give bots the dead-letter detail `category:family`
--   (e.g. `search:Googlebot`), which 0007's view copies into `bot` unchanged (so
--   recount_bot_hits in stream_jobs/sink.py still matches rows one to one); `category` and
--   `family` are ALIAS columns that split it at read time (older rows: category 'other').
-- agg_dim_hourly: channel, source and open_class become rollup dimensions. The view is
--   re-created with 0010's statement plus these three (a later change of the dimension list
--   must start from this statement); hours aggregated before have no rows for them, so a
--   question about them over earlier days reads as empty there.
--
-- Each ALTER runs on the local table and, in a cluster, on the shard-spanning table in front
-- of it (in single-node mode both are the same), as in 0008 and 0010.
ALTER TABLE {{table:events}} {{on_cluster}}
    ADD COLUMN IF NOT EXISTS channel LowCardinality(String),
    ADD COLUMN IF NOT EXISTS source LowCardinality(String),
    ADD COLUMN IF NOT EXISTS open_class LowCardinality(String);

ALTER TABLE events {{on_cluster}}
    ADD COLUMN IF NOT EXISTS channel LowCardinality(String),
    ADD COLUMN IF NOT EXISTS source LowCardinality(String),
    ADD COLUMN IF NOT EXISTS open_class LowCardinality(String);

ALTER TABLE {{table:bot_hits}} {{on_cluster}}
    ADD COLUMN IF NOT EXISTS category String
        ALIAS if(position(bot, ':') > 0, substring(bot, 1, position(bot, ':') - 1), 'other'),
    ADD COLUMN IF NOT EXISTS family String
        ALIAS if(position(bot, ':') > 0, substring(bot, position(bot, ':') + 1), bot);

ALTER TABLE bot_hits {{on_cluster}}
    ADD COLUMN IF NOT EXISTS category String
        ALIAS if(position(bot, ':') > 0, substring(bot, 1, position(bot, ':') - 1), 'other'),
    ADD COLUMN IF NOT EXISTS family String
        ALIAS if(position(bot, ':') > 0, substring(bot, position(bot, ':') + 1), bot);

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
    ('campaign_id', toString(campaign_id)),
    ('channel', toString(channel)),
    ('source', toString(source)),
    ('open_class', toString(open_class))
] AS pair
GROUP BY site_id, dimension, value, hour;
