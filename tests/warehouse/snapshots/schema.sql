CREATE TABLE agg_dim_daily
(
    `site_id` LowCardinality(String),
    `dimension` LowCardinality(String),
    `value` String,
    `day` Date,
    `events` SimpleAggregateFunction(sum, UInt64),
    `pageviews` SimpleAggregateFunction(sum, UInt64),
    `email_opens` SimpleAggregateFunction(sum, UInt64),
    `service_requests` SimpleAggregateFunction(sum, UInt64),
    `engaged_ms` SimpleAggregateFunction(sum, UInt64),
    `visitors` AggregateFunction(uniqCombined(12), String),
    `sessions` AggregateFunction(uniqCombined(12), String),
    `openers` AggregateFunction(uniqCombined(12), String),
    `web_visitors` AggregateFunction(uniqCombined(12), String),
    `web_sessions` AggregateFunction(uniqCombined(12), String),
    `custom_events` SimpleAggregateFunction(sum, UInt64),
    `outbound_clicks` SimpleAggregateFunction(sum, UInt64),
    PROJECTION p_day
    (
        SELECT *
        ORDER BY
            site_id,
            dimension,
            day,
            value
    )
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(day)
ORDER BY (site_id, dimension, value, day)
TTL day + toIntervalYear(5)
SETTINGS index_granularity = 256, deduplicate_merge_projection_mode = 'rebuild', lightweight_mutation_projection_mode = 'drop';

CREATE MATERIALIZED VIEW agg_dim_daily_mv TO agg_dim_daily
(
    `site_id` LowCardinality(String),
    `dimension` LowCardinality(String),
    `value` String,
    `day` Date,
    `events` UInt64,
    `pageviews` UInt64,
    `email_opens` UInt64,
    `service_requests` UInt64,
    `custom_events` UInt64,
    `outbound_clicks` UInt64,
    `engaged_ms` UInt64,
    `openers` AggregateFunction(uniqCombined(12), String),
    `web_visitors` AggregateFunction(uniqCombined(12), String),
    `web_sessions` AggregateFunction(uniqCombined(12), String)
)
AS SELECT
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
FROM agg_dim_hourly
GROUP BY
    site_id,
    dimension,
    value,
    day;

CREATE TABLE agg_dim_hourly
(
    `site_id` LowCardinality(String),
    `dimension` LowCardinality(String),
    `value` String,
    `hour` DateTime('UTC'),
    `events` SimpleAggregateFunction(sum, UInt64),
    `pageviews` SimpleAggregateFunction(sum, UInt64),
    `email_opens` SimpleAggregateFunction(sum, UInt64),
    `service_requests` SimpleAggregateFunction(sum, UInt64),
    `engaged_ms` SimpleAggregateFunction(sum, UInt64),
    `visitors` AggregateFunction(uniqCombined(12), String),
    `sessions` AggregateFunction(uniqCombined(12), String),
    `openers` AggregateFunction(uniqCombined(12), String),
    `web_visitors` AggregateFunction(uniqCombined(12), String),
    `web_sessions` AggregateFunction(uniqCombined(12), String),
    `custom_events` SimpleAggregateFunction(sum, UInt64),
    `outbound_clicks` SimpleAggregateFunction(sum, UInt64)
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(hour)
ORDER BY (site_id, dimension, hour, value)
TTL hour + toIntervalYear(5)
SETTINGS index_granularity = 256;

CREATE MATERIALIZED VIEW agg_dim_hourly_mv TO agg_dim_hourly
(
    `site_id` LowCardinality(String),
    `dimension` String,
    `value` String,
    `hour` DateTime('UTC'),
    `events` UInt64,
    `pageviews` UInt64,
    `email_opens` UInt64,
    `service_requests` UInt64,
    `custom_events` UInt64,
    `outbound_clicks` UInt64,
    `engaged_ms` UInt64,
    `openers` AggregateFunction(uniqCombined(12), String),
    `web_visitors` AggregateFunction(uniqCombined(12), String),
    `web_sessions` AggregateFunction(uniqCombined(12), String)
)
AS SELECT
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
    uniqCombinedStateIf(12)(visitor_id, (event_type IN ('pageview', 'engagement', 'custom', 'outbound'))) AS web_visitors,
    uniqCombinedStateIf(12)(session_id, (session_id != '') AND (event_type IN ('pageview', 'engagement', 'custom', 'outbound'))) AS web_sessions
FROM events
ARRAY JOIN [('event_type', toString(event_type)), ('path', path), ('section', toString(section)), ('referrer_domain', toString(referrer_domain)), ('utm_source', toString(utm_source)), ('utm_medium', toString(utm_medium)), ('utm_campaign', toString(utm_campaign)), ('country', toString(country)), ('isp', toString(isp)), ('device_type', toString(device_type)), ('device_brand', toString(device_brand)), ('browser', toString(browser)), ('browser_version', concat(toString(browser), ' ', toString(browser_major))), ('os', toString(os)), ('os_version', concat(toString(os), ' ', toString(os_major))), ('service_type', toString(service_type)), ('campaign_id', toString(campaign_id)), ('channel', toString(channel)), ('source', toString(source)), ('open_class', toString(open_class))] AS pair
GROUP BY
    site_id,
    dimension,
    value,
    hour;

CREATE TABLE agg_dim_weekly
(
    `site_id` LowCardinality(String),
    `dimension` LowCardinality(String),
    `value` String,
    `week` Date,
    `events` SimpleAggregateFunction(sum, UInt64),
    `pageviews` SimpleAggregateFunction(sum, UInt64),
    `email_opens` SimpleAggregateFunction(sum, UInt64),
    `service_requests` SimpleAggregateFunction(sum, UInt64),
    `custom_events` SimpleAggregateFunction(sum, UInt64),
    `outbound_clicks` SimpleAggregateFunction(sum, UInt64),
    `engaged_ms` SimpleAggregateFunction(sum, UInt64),
    `openers` AggregateFunction(uniqCombined(12), String),
    `web_visitors` AggregateFunction(uniqCombined(12), String),
    `web_sessions` AggregateFunction(uniqCombined(12), String)
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(week)
ORDER BY (site_id, dimension, week, value)
TTL week + toIntervalYear(5)
SETTINGS index_granularity = 256;

CREATE MATERIALIZED VIEW agg_dim_weekly_mv TO agg_dim_weekly
(
    `site_id` LowCardinality(String),
    `dimension` LowCardinality(String),
    `value` String,
    `week` Date,
    `events` UInt64,
    `pageviews` UInt64,
    `email_opens` UInt64,
    `service_requests` UInt64,
    `custom_events` UInt64,
    `outbound_clicks` UInt64,
    `engaged_ms` UInt64,
    `openers` AggregateFunction(uniqCombined(12), String),
    `web_visitors` AggregateFunction(uniqCombined(12), String),
    `web_sessions` AggregateFunction(uniqCombined(12), String)
)
AS SELECT
    site_id,
    dimension,
    value,
    toMonday(day) AS week,
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
FROM agg_dim_daily
GROUP BY
    site_id,
    dimension,
    value,
    week;

CREATE TABLE agg_section_hourly
(
    `site_id` LowCardinality(String),
    `section` String,
    `hour` DateTime('UTC'),
    `events` SimpleAggregateFunction(sum, UInt64),
    `pageviews` SimpleAggregateFunction(sum, UInt64),
    `engaged_ms` SimpleAggregateFunction(sum, UInt64),
    `section_ms` SimpleAggregateFunction(sum, UInt64),
    `web_visitors` AggregateFunction(uniqCombined(12), String),
    `web_sessions` AggregateFunction(uniqCombined(12), String)
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(hour)
ORDER BY (site_id, hour, section)
TTL hour + toIntervalYear(5)
SETTINGS index_granularity = 256;

CREATE MATERIALIZED VIEW agg_section_hourly_mv TO agg_section_hourly
(
    `site_id` LowCardinality(String),
    `section` String,
    `hour` DateTime('UTC'),
    `events` UInt64,
    `pageviews` UInt64,
    `engaged_ms` UInt64,
    `section_ms` UInt64,
    `web_visitors` AggregateFunction(uniqCombined(12), String),
    `web_sessions` AggregateFunction(uniqCombined(12), String)
)
AS SELECT
    site_id,
    seen AS section,
    toStartOfHour(ts) AS hour,
    toUInt64(count()) AS events,
    toUInt64(countIf(event_type = 'pageview')) AS pageviews,
    toUInt64(sum(engaged_ms)) AS engaged_ms,
    toUInt64(sum(dwell)) AS section_ms,
    uniqCombinedState(12)(visitor_id) AS web_visitors,
    uniqCombinedStateIf(12)(session_id, session_id != '') AS web_sessions
FROM
(
    SELECT
        site_id,
        ts,
        event_type,
        engaged_ms,
        visitor_id,
        session_id,
        seen,
        dwell
    FROM events
    ARRAY JOIN
        if(empty(section_names) AND (section != ''), [toString(section)], section_names) AS seen,
        if(empty(section_names) AND (section != ''), [toUInt32(0)], section_ms) AS dwell
    WHERE event_type IN ('pageview', 'engagement', 'custom', 'outbound')
)
GROUP BY
    site_id,
    section,
    hour;

CREATE TABLE agg_site_hourly
(
    `site_id` LowCardinality(String),
    `hour` DateTime('UTC'),
    `events` SimpleAggregateFunction(sum, UInt64),
    `pageviews` SimpleAggregateFunction(sum, UInt64),
    `email_opens` SimpleAggregateFunction(sum, UInt64),
    `service_requests` SimpleAggregateFunction(sum, UInt64),
    `engaged_ms` SimpleAggregateFunction(sum, UInt64),
    `visitors` AggregateFunction(uniqCombined(12), String),
    `sessions` AggregateFunction(uniqCombined(12), String),
    `openers` AggregateFunction(uniqCombined(12), String),
    `web_visitors` AggregateFunction(uniqCombined(12), String),
    `web_sessions` AggregateFunction(uniqCombined(12), String),
    `custom_events` SimpleAggregateFunction(sum, UInt64),
    `outbound_clicks` SimpleAggregateFunction(sum, UInt64)
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(hour)
ORDER BY (site_id, hour)
TTL hour + toIntervalYear(5)
SETTINGS index_granularity = 8192;

CREATE MATERIALIZED VIEW agg_site_hourly_mv TO agg_site_hourly
(
    `site_id` LowCardinality(String),
    `hour` DateTime('UTC'),
    `events` UInt64,
    `pageviews` UInt64,
    `email_opens` UInt64,
    `service_requests` UInt64,
    `custom_events` UInt64,
    `outbound_clicks` UInt64,
    `engaged_ms` UInt64,
    `openers` AggregateFunction(uniqCombined(12), String),
    `web_visitors` AggregateFunction(uniqCombined(12), String),
    `web_sessions` AggregateFunction(uniqCombined(12), String)
)
AS SELECT
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
    uniqCombinedStateIf(12)(visitor_id, (event_type IN ('pageview', 'engagement', 'custom', 'outbound'))) AS web_visitors,
    uniqCombinedStateIf(12)(session_id, (session_id != '') AND (event_type IN ('pageview', 'engagement', 'custom', 'outbound'))) AS web_sessions
FROM events
GROUP BY
    site_id,
    hour;

CREATE TABLE bot_hits
(
    `day` Date,
    `site_id` LowCardinality(String),
    `bot` LowCardinality(String),
    `hits` UInt64,
    `category` String ALIAS if(position(bot, ':') > 0, substring(bot, 1, position(bot, ':') - 1), 'other'),
    `family` String ALIAS if(position(bot, ':') > 0, substring(bot, position(bot, ':') + 1), bot)
)
ENGINE = SummingMergeTree(hits)
PARTITION BY toYYYYMM(day)
ORDER BY (site_id, day, bot)
TTL day + toIntervalYear(5)
SETTINGS index_granularity = 8192;

CREATE MATERIALIZED VIEW bot_hits_mv TO bot_hits
(
    `day` Date,
    `site_id` LowCardinality(String),
    `bot` String,
    `hits` UInt64
)
AS SELECT
    toDate(failed_at) AS day,
    site_id,
    detail AS bot,
    toUInt64(count()) AS hits
FROM failed_events
WHERE reason = 'bot'
GROUP BY
    day,
    site_id,
    bot;

CREATE TABLE campaign_sends
(
    `site_id` LowCardinality(String),
    `campaign_id` LowCardinality(String),
    `sent_on` Date,
    `sent` UInt64,
    `registered_at` DateTime64(3, 'UTC') DEFAULT now64(3),
    `registered_by` String
)
ENGINE = MergeTree
ORDER BY (site_id, campaign_id, sent_on)
TTL sent_on + toIntervalYear(5)
SETTINGS index_granularity = 8192;

CREATE TABLE erasure_log
(
    `ts` DateTime64(3, 'UTC'),
    `subject` String,
    `actor` String,
    `via` LowCardinality(String),
    `rows_deleted` Map(String, UInt64),
    `key_destroyed` UInt8,
    `opted_out` UInt8
)
ENGINE = MergeTree
ORDER BY ts
TTL toDateTime(ts) + toIntervalYear(3)
SETTINGS index_granularity = 8192;

CREATE TABLE events
(
    `event_id` UUID,
    `event_type` LowCardinality(String),
    `site_id` LowCardinality(String),
    `ts` DateTime64(3, 'UTC'),
    `visitor_id` String,
    `session_id` String,
    `customer_pid` String,
    `path` String,
    `section` LowCardinality(String),
    `event_name` LowCardinality(String),
    `props` Map(LowCardinality(String), String),
    `outbound_url` String,
    `section_names` Array(LowCardinality(String)),
    `section_ms` Array(UInt32),
    `referrer_domain` LowCardinality(String),
    `utm_source` LowCardinality(String),
    `utm_medium` LowCardinality(String),
    `utm_campaign` LowCardinality(String),
    `country` LowCardinality(String),
    `isp` LowCardinality(String),
    `asn` UInt32,
    `device_type` LowCardinality(String),
    `device_brand` LowCardinality(String),
    `browser` LowCardinality(String),
    `browser_major` LowCardinality(String),
    `os` LowCardinality(String),
    `os_major` LowCardinality(String),
    `engaged_ms` UInt32,
    `scroll_pct` UInt8,
    `service_type` LowCardinality(String),
    `campaign_id` LowCardinality(String),
    `consent` LowCardinality(String),
    `is_bot` UInt8,
    `kafka_partition` UInt16,
    `kafka_offset` UInt64,
    `channel` LowCardinality(String),
    `source` LowCardinality(String),
    `open_class` LowCardinality(String),
    `session_hash` UInt64 MATERIALIZED cityHash64(session_id),
    INDEX idx_customer_pid customer_pid TYPE bloom_filter(0.01) GRANULARITY 4,
    INDEX idx_visitor_id visitor_id TYPE bloom_filter(0.01) GRANULARITY 4,
    INDEX idx_session_id session_id TYPE bloom_filter(0.01) GRANULARITY 4,
    PROJECTION p_visit
    (
        SELECT *
        ORDER BY
            site_id,
            country,
            device_type,
            event_type,
            ts
    ),
    PROJECTION p_path
    (
        SELECT
            *,
            session_hash
        ORDER BY
            site_id,
            path,
            ts
    )
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(ts)
ORDER BY (site_id, toDate(ts), event_type, ts)
TTL toDateTime(ts) + toIntervalDay(90) WHERE event_type = 'email_open', toDateTime(ts) + toIntervalYear(3) WHERE event_type = 'service_request', toDateTime(ts) + toIntervalMonth(13) WHERE (NOT (event_type = 'email_open')) AND (NOT (event_type = 'service_request'))
SETTINGS index_granularity = 8192, lightweight_mutation_projection_mode = 'drop';

CREATE TABLE failed_events
(
    `failed_at` DateTime64(3, 'UTC'),
    `reason` LowCardinality(String),
    `step` LowCardinality(String),
    `site_id` LowCardinality(String),
    `event_id` String,
    `detail` String,
    `payload` String,
    `kafka_partition` UInt16,
    `kafka_offset` UInt64
)
ENGINE = MergeTree
PARTITION BY toYYYYMMDD(failed_at)
ORDER BY (reason, failed_at)
TTL toDateTime(failed_at) + toIntervalDay(30)
SETTINGS index_granularity = 8192;

CREATE TABLE query_audit
(
    `ts` DateTime64(3, 'UTC'),
    `actor` String,
    `role` LowCardinality(String),
    `endpoint` LowCardinality(String),
    `request` String,
    `cells` UInt64,
    `status` UInt16
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(ts)
ORDER BY (toDate(ts), actor, ts)
TTL toDateTime(ts) + toIntervalYear(3)
SETTINGS index_granularity = 8192;

CREATE TABLE research_budgets
(
    `researcher` String,
    `epsilon` Float64,
    `delta` Float64,
    `period` LowCardinality(String),
    `set_at` DateTime64(3, 'UTC'),
    `set_by` String
)
ENGINE = MergeTree
ORDER BY (researcher, set_at)
TTL toDateTime(set_at) + toIntervalYear(3)
SETTINGS index_granularity = 8192;

CREATE TABLE research_in_flight
(
    `ts` DateTime64(3, 'UTC'),
    `researcher` String,
    `reservation` UUID,
    `question` String,
    `epsilon` Float64,
    `delta` Float64,
    `open` UInt8
)
ENGINE = MergeTree
ORDER BY (researcher, ts)
TTL toDateTime(ts) + toIntervalDay(1)
SETTINGS index_granularity = 8192;

CREATE TABLE research_ledger
(
    `ts` DateTime64(3, 'UTC'),
    `researcher` String,
    `question` String,
    `question_hash` FixedString(64),
    `epsilon` Float64,
    `delta` Float64,
    `repeat` UInt8,
    `answer` String
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(ts)
ORDER BY (researcher, ts)
TTL toDateTime(ts) + toIntervalYear(3)
SETTINGS index_granularity = 8192;

CREATE TABLE schema_migrations
(
    `version` UInt32,
    `name` String,
    `applied_at` DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = MergeTree
ORDER BY version
SETTINGS index_granularity = 8192;

CREATE TABLE sessions
(
    `site_id` LowCardinality(String),
    `day` Date,
    `session_id` String,
    `started` SimpleAggregateFunction(min, DateTime64(3, 'UTC')),
    `ended` SimpleAggregateFunction(max, DateTime64(3, 'UTC')),
    `events` SimpleAggregateFunction(sum, UInt64),
    `pageviews` SimpleAggregateFunction(sum, UInt64),
    `web_events` SimpleAggregateFunction(sum, UInt64),
    `interactions` SimpleAggregateFunction(sum, UInt64),
    `engaged_ms` SimpleAggregateFunction(sum, UInt64),
    `entry_path` AggregateFunction(argMin, String, DateTime64(3, 'UTC')),
    `exit_path` AggregateFunction(argMax, String, DateTime64(3, 'UTC')),
    `country` SimpleAggregateFunction(any, LowCardinality(String)),
    `device_type` SimpleAggregateFunction(any, LowCardinality(String)),
    PROJECTION p_visit
    (
        SELECT *
        ORDER BY
            site_id,
            country,
            device_type,
            day,
            session_id
    ),
    PROJECTION p_sample
    (
        SELECT *
        ORDER BY
            site_id,
            cityHash64(session_id),
            session_id,
            day
    )
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(day)
ORDER BY (site_id, day, cityHash64(session_id), session_id)
SAMPLE BY cityHash64(session_id)
TTL day + toIntervalMonth(13)
SETTINGS index_granularity = 8192, deduplicate_merge_projection_mode = 'rebuild', lightweight_mutation_projection_mode = 'drop';

CREATE MATERIALIZED VIEW sessions_mv TO sessions
(
    `site_id` LowCardinality(String),
    `day` Date,
    `session_id` String,
    `started` DateTime64(3, 'UTC'),
    `ended` DateTime64(3, 'UTC'),
    `events` UInt64,
    `pageviews` UInt64,
    `web_events` UInt64,
    `interactions` UInt64,
    `engaged_ms` UInt64,
    `entry_path` AggregateFunction(argMin, String, DateTime64(3, 'UTC')),
    `exit_path` AggregateFunction(argMax, String, DateTime64(3, 'UTC')),
    `country` String,
    `device_type` String
)
AS SELECT
    site_id,
    toDate(ts) AS day,
    session_id,
    min(ts) AS started,
    max(ts) AS ended,
    toUInt64(count()) AS events,
    toUInt64(countIf(event_type = 'pageview')) AS pageviews,
    toUInt64(countIf(event_type IN ('pageview', 'engagement', 'custom', 'outbound'))) AS web_events,
    toUInt64(countIf(event_type IN ('custom', 'outbound'))) AS interactions,
    toUInt64(sumIf(engaged_ms, event_type = 'engagement')) AS engaged_ms,
    argMinStateIf(path, ts, event_type = 'pageview') AS entry_path,
    argMaxStateIf(path, ts, event_type = 'pageview') AS exit_path,
    any(country) AS country,
    any(device_type) AS device_type
FROM events
WHERE session_id != ''
GROUP BY
    site_id,
    day,
    session_id;
