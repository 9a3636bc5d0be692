-- Per-section hourly rollup (issue 12): the `section` dimension means the sections a reader
-- saw, i.e. the per-section dwell that engagement events carry since 0008 (section_names /
-- section_ms), plus the one `section` an event may name itself (a server hook, a portal's own
-- JS; no dwell). Read from raw events that is an ARRAY JOIN over every event of the range
-- (about 100 ms per million events here, so ~1 s at the 10-million-event dashboard target);
-- this rollup answers the same question from a few rows per section and hour.
-- Web events only (warehouse/metrics.py: sections are read on web pages; an e-mail open or a
-- service request naming a section adds no reader). Columns: the web counts and sketches of
-- 0010 plus the dwell `section_ms`. One row per (event, section): `events` counts the
-- engagement reports naming a section, `web_visitors` / `web_sessions` those who saw it
-- (uniqCombined(12) states, as in 0005, so the rollup and raw events agree exactly). No
-- visitor or session id is stored.
-- ORDER BY (site_id, hour, section): a dashboard reads one site, a range of hours and every
-- section of it (sections are few per site). index_granularity = 256: rows carry sketches
-- (see 0005).
CREATE TABLE IF NOT EXISTS {{table:agg_section_hourly}} {{on_cluster}}
(
    site_id LowCardinality(String),
    section String,
    hour DateTime('UTC'),
    events SimpleAggregateFunction(sum, UInt64),
    pageviews SimpleAggregateFunction(sum, UInt64),
    engaged_ms SimpleAggregateFunction(sum, UInt64),
    section_ms SimpleAggregateFunction(sum, UInt64),
    web_visitors AggregateFunction(uniqCombined(12), String),
    web_sessions AggregateFunction(uniqCombined(12), String)
)
ENGINE = {{engine:AggregatingMergeTree}}
PARTITION BY toYYYYMM(hour)
ORDER BY (site_id, hour, section)
TTL {{ttl:agg_section_hourly}}
SETTINGS index_granularity = 256;

CREATE MATERIALIZED VIEW IF NOT EXISTS {{table:agg_section_hourly_mv}} {{on_cluster}}
TO {{table:agg_section_hourly}} AS
SELECT
    site_id,
    seen AS section,
    toStartOfHour(ts) AS hour,
    toUInt64(count()) AS events,
    toUInt64(countIf(event_type = 'pageview')) AS pageviews,
    toUInt64(sum(engaged_ms)) AS engaged_ms,
    toUInt64(sum(dwell)) AS section_ms,
    uniqCombinedState(12)(visitor_id) AS web_visitors,
    uniqCombinedStateIf(12)(session_id, session_id != '') AS web_sessions
FROM (
    -- inner query: its aliases must not shadow the columns the ARRAY JOIN reads
    SELECT site_id, ts, event_type, engaged_ms, visitor_id, session_id, seen, dwell
    FROM {{table:events}}
    ARRAY JOIN
        if(empty(section_names) AND section != '', [toString(section)], section_names) AS seen,
        if(empty(section_names) AND section != '', [toUInt32(0)], section_ms) AS dwell
    WHERE event_type IN ('pageview', 'engagement', 'custom', 'outbound')
)
GROUP BY site_id, section, hour;

{{distributed:agg_section_hourly:cityHash64(site_id)}};

-- The events already landed (their `section`; 0008's columns are filled from now on). The
-- worker migrates before it consumes, so no insert races this one; run `mayak migrate` by
-- hand only with the workers stopped, or rows landed meanwhile are counted twice. Plain
-- names: on a cluster this reads every shard and inserts through the shard-spanning table
-- (an INSERT is not replicated DDL: it runs once, from where the migrations run).
-- Idempotent: an upgrade interrupted after this insert (before the migration was recorded)
-- runs it again; the rows are whole (site, section, hour) groups, and a group already in
-- the new table (only this insert can have written it yet) is not inserted twice.
INSERT INTO agg_section_hourly
SELECT
    site_id,
    seen AS section,
    toStartOfHour(ts) AS hour,
    toUInt64(count()) AS events,
    toUInt64(countIf(event_type = 'pageview')) AS pageviews,
    toUInt64(sum(engaged_ms)) AS engaged_ms,
    toUInt64(sum(dwell)) AS section_ms,
    uniqCombinedState(12)(visitor_id) AS web_visitors,
    uniqCombinedStateIf(12)(session_id, session_id != '') AS web_sessions
FROM (
    -- inner query: its aliases must not shadow the columns the ARRAY JOIN reads
    SELECT site_id, ts, event_type, engaged_ms, visitor_id, session_id, seen, dwell
    FROM events
    ARRAY JOIN
        if(empty(section_names) AND section != '', [toString(section)], section_names) AS seen,
        if(empty(section_names) AND section != '', [toUInt32(0)], section_ms) AS dwell
    WHERE event_type IN ('pageview', 'engagement', 'custom', 'outbound')
)
WHERE (site_id, seen, toStartOfHour(ts)) GLOBAL NOT IN (
    SELECT site_id, section, hour FROM agg_section_hourly)
GROUP BY site_id, section, hour;
