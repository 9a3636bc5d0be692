-- Weekly companion of agg_dim_daily (issue 14: the pages panel at 10M events). A 30-day top-N
-- of a many-valued dimension (path: ~1,500 values) merged one uniqCombined(12) state per value
-- and day, 43,500 states, and that merge was the call's cost (325-440 ms; the sums over the
-- same rows take ~10 ms). The same (dimension, value) rows per Monday-Sunday UTC week let the
-- read path (warehouse/query.py, warehouse/rollup_ranges.py) take the whole weeks of a range
-- from here, the other whole days from agg_dim_daily and the partial days at both ends from
-- agg_dim_hourly: a 30-day range is 3-4 weekly rows per value plus at most 6+6 daily ones.
-- A merged state is the same sketch whichever rows it was folded from, except that
-- uniqCombined can end one off near its switch to HyperLogLog (0005; about 128 values).
-- The columns are the ones agg_dim_daily's view fills since 0010; not its legacy all-event
-- `visitors`/`sessions` sketches, which nothing reads and which hold empty states since then.
-- ORDER BY (site_id, dimension, week, value), unlike agg_dim_daily's value-before-day: a
-- range reads its 3-4 weeks of one dimension as one key range instead of every week of the
-- month (reading a state costs about as much as merging it); a top-N's N winners are still
-- skipped to by value within each week (few rows per week). index_granularity = 256 as
-- agg_dim_daily (rows carry 2.5 KB sketches).
-- Fed by a view on agg_dim_daily's inserts (not on events): the 17-dimension fan-out runs
-- once, and the daily block of an insert is already grouped, so this view folds a few rows
-- per (dimension, value) into their Monday. Cost: one more part per insert, of the daily
-- part's size or smaller (the sink's insert timing is in /work/wt/notes/weekly.md).
-- warehouse/repair.py rewrites a repaired day's whole week from agg_dim_daily.
--
-- The days around the weeks (up to 6 at each end) still come from agg_dim_daily, whose key
-- puts value before day: a few days of one dimension read the granules of every day of the
-- month (8 days of paths: 200-300 ms, as much as the 29 days). The projection p_day keeps a
-- copy of each daily part sorted by (site_id, dimension, day, value): ClickHouse picks it by
-- itself for a range of days, which then reads those days' granules only (110-140 ms for 8
-- days of paths, of which most is merging the 12,000 sketches). Part of the table: the same
-- rows whichever order is read. Cost: agg_dim_daily stored and sorted twice on insert (~135
-- MB more at 10M events). An AggregatingMergeTree takes a projection only when told what a
-- merge does to it ('rebuild': from the merged rows, as sessions in 0017); repair's
-- lightweight DELETE drops the projection of the parts it touches ('drop'), which are read in
-- table order until a merge rewrites them. Parts written before get it by a mutation
-- (MATERIALIZE PROJECTION, ~12 s at 10M events). The local table only.
ALTER TABLE {{table:agg_dim_daily}} {{on_cluster}}
    MODIFY SETTING deduplicate_merge_projection_mode = 'rebuild',
    lightweight_mutation_projection_mode = 'drop';

ALTER TABLE {{table:agg_dim_daily}} {{on_cluster}}
    ADD PROJECTION IF NOT EXISTS p_day (SELECT * ORDER BY site_id, dimension, day, value);

ALTER TABLE {{table:agg_dim_daily}} {{on_cluster}} MATERIALIZE PROJECTION p_day;

CREATE TABLE IF NOT EXISTS {{table:agg_dim_weekly}} {{on_cluster}}
(
    site_id LowCardinality(String),
    dimension LowCardinality(String),
    value String,
    week Date,
    events SimpleAggregateFunction(sum, UInt64),
    pageviews SimpleAggregateFunction(sum, UInt64),
    email_opens SimpleAggregateFunction(sum, UInt64),
    service_requests SimpleAggregateFunction(sum, UInt64),
    custom_events SimpleAggregateFunction(sum, UInt64),
    outbound_clicks SimpleAggregateFunction(sum, UInt64),
    engaged_ms SimpleAggregateFunction(sum, UInt64),
    openers AggregateFunction(uniqCombined(12), String),
    web_visitors AggregateFunction(uniqCombined(12), String),
    web_sessions AggregateFunction(uniqCombined(12), String)
)
ENGINE = {{engine:AggregatingMergeTree}}
PARTITION BY toYYYYMM(week)
ORDER BY (site_id, dimension, week, value)
TTL {{ttl:agg_dim_weekly}}
SETTINGS index_granularity = 256;

CREATE MATERIALIZED VIEW IF NOT EXISTS {{table:agg_dim_weekly_mv}} {{on_cluster}}
TO {{table:agg_dim_weekly}} AS
SELECT
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
FROM {{table:agg_dim_daily}}
GROUP BY site_id, dimension, value, week;

{{distributed:agg_dim_weekly:cityHash64(site_id)}};

-- The weeks already in agg_dim_daily (~5 s at 10M events: 225,000 daily rows). The worker
-- migrates before it consumes, so no insert races this one; run `mayak migrate` by hand only
-- with the workers stopped, or rows landed meanwhile are counted twice. Plain names: on a
-- cluster this reads every shard and inserts through the shard-spanning table (an INSERT is
-- not replicated DDL: it runs once, from where the migrations run).
-- Idempotent: an upgrade interrupted after this insert (before the migration was recorded)
-- runs it again; the rows are whole (site, dimension, value, week) groups, and a group
-- already in the new table (only this insert can have written it yet) is not inserted twice.
INSERT INTO agg_dim_weekly
SELECT
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
WHERE (site_id, dimension, value, toMonday(day)) GLOBAL NOT IN (
    SELECT site_id, dimension, value, week FROM agg_dim_weekly)
GROUP BY site_id, dimension, value, week;
