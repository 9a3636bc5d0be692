-- Bot counters (0002 `bot_hits`) fed by ClickHouse itself from the stream jobs' dead letters:
-- bots leave the pipeline as rejections with reason 'bot' and detail = bot family, and land
-- in `failed_events` exactly once (kafka_partition/kafka_offset, see stream_jobs/sink.py).
-- Counting them in the same insert, rather than with a second insert from the worker, means
-- a crash between two inserts can neither lose nor double a batch's bot hits. (ClickHouse
-- still commits the two parts of one insert one after the other: a worker killed in between
-- loses that insert's hits, which `recount_bot_hits` in stream_jobs/sink.py adds back.)
-- Written by the stream jobs (issue 4); the target table and its TTL stay with 0002.
CREATE MATERIALIZED VIEW IF NOT EXISTS {{table:bot_hits_mv}} {{on_cluster}}
TO {{table:bot_hits}} AS
SELECT
    toDate(failed_at) AS day,
    site_id,
    detail AS bot,
    toUInt64(count()) AS hits
FROM {{table:failed_events}}
WHERE reason = 'bot'
GROUP BY day, site_id, bot;
