-- A page's view (issue 14): once a user clicks a page on the product page, every panel is
-- filtered by `path = <page>` and, besides the rollups, reads raw events: visit figures,
-- entry/exit, goals, funnel and every other breakdown of that page. With events ordered by
-- (site_id, toDate(ts), event_type, ts) such a read scans every event of the range (one page
-- is 1/1500 of them in the 10M bench: 0.3-2.5 s per call). The projection p_path keeps a copy
-- of each part sorted by (site_id, path, ts): ClickHouse picks it by itself for a query that
-- names the site and one path (or a few), and reads that page's granules only (20-70 ms at
-- 10M). It is part of the table, so answers are the same rows whichever order is read.
--
-- Cost: every events part is stored twice (about 2x the events bytes on disk) and written
-- twice on insert. Erasure's lightweight DELETE drops the projection of the parts it touches
-- (lightweight_mutation_projection_mode = 'drop'; without it ClickHouse refuses a DELETE on a
-- table with projections). Not 'rebuild': in this ClickHouse (chDB 4.4, 26.9) that left the
-- projection's copy of a deleted row readable (tests/warehouse/test_wh_events_by_path.py).
-- Such a part is read in the table's own order until a merge rewrites it with a fresh
-- projection; TTL merges rebuild it as they rewrite a part.
-- Parts written before this migration get the projection by a background mutation
-- (MATERIALIZE PROJECTION, about 75 s at 10M events on 2 busy cores); until a part has it,
-- queries read that part in the table's own order, with the same result.
-- The local table only: in a cluster the shard-spanning `events` holds no data.
ALTER TABLE {{table:events}} {{on_cluster}}
    MODIFY SETTING lightweight_mutation_projection_mode = 'drop';

ALTER TABLE {{table:events}} {{on_cluster}}
    ADD PROJECTION IF NOT EXISTS p_path (SELECT * ORDER BY site_id, path, ts);

ALTER TABLE {{table:events}} {{on_cluster}} MATERIALIZE PROJECTION p_path;
