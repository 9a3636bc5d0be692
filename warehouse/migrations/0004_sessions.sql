-- Session aggregates, fed by a materialized view on `events`: one row per (site, day,
-- session) after merges, for visit duration, bounce rate, entry and exit pages.
-- No visitor_id here: a session row is only as linkable as its session_id, and erasure
-- deletes a customer's sessions by the session ids of their events.
-- A session crossing midnight (UTC) is two rows, one per day: day is in the key so TTL
-- can expire whole days and the dashboards read a date range.
-- ORDER BY (site_id, day, cityHash64(session_id), session_id) with SAMPLE BY the hash:
-- dashboards read one site and a range of days; bounce rate and average visit length are
-- ratios over sessions, which the summary estimates from a sample of whole sessions
-- (`SAMPLE n`: every row of a sampled session is in, as the hash is the session's) instead of
-- grouping every session of the range (one GROUP BY over millions of session ids is the
-- slowest dashboard read at 10 million events). session_id stays in the key so two sessions
-- with colliding hashes are never folded into one row.
-- The MV is safe without insert-dedup settings because the events sink inserts each row
-- exactly once (kafka offsets, see 0001).
CREATE TABLE IF NOT EXISTS {{table:sessions}} {{on_cluster}}
(
    site_id LowCardinality(String),
    day Date,
    session_id String,
    started SimpleAggregateFunction(min, DateTime64(3, 'UTC')),
    ended SimpleAggregateFunction(max, DateTime64(3, 'UTC')),
    events SimpleAggregateFunction(sum, UInt64),
    pageviews SimpleAggregateFunction(sum, UInt64),
    engaged_ms SimpleAggregateFunction(sum, UInt64),
    entry_path AggregateFunction(argMin, String, DateTime64(3, 'UTC')),
    exit_path AggregateFunction(argMax, String, DateTime64(3, 'UTC')),
    country SimpleAggregateFunction(any, LowCardinality(String)),
    device_type SimpleAggregateFunction(any, LowCardinality(String))
)
ENGINE = {{engine:AggregatingMergeTree}}
PARTITION BY toYYYYMM(day)
ORDER BY (site_id, day, cityHash64(session_id), session_id)
SAMPLE BY cityHash64(session_id)
TTL {{ttl:sessions}};

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
    toUInt64(sum(engaged_ms)) AS engaged_ms,
    argMinStateIf(path, ts, event_type = 'pageview') AS entry_path,
    argMaxStateIf(path, ts, event_type = 'pageview') AS exit_path,
    any(country) AS country,
    any(device_type) AS device_type
FROM {{table:events}}
WHERE session_id != ''
GROUP BY site_id, day, session_id;

{{distributed:sessions:cityHash64(site_id)}};
