-- A view filtered by visit-constant rows (issue 14): a user who clicks a country and a device
-- type on the product page filters every panel by `country = X AND device_type = Y`. Those
-- questions cross dimensions, so they read raw events, and the visit figures (entry/exit
-- pages, bounce rate) read `sessions`. Ordered by date first, both read every row of the
-- range (7M events / 2.4M session rows at 10M events: 0.3-0.6 s per call on a quiet
-- machine). The projections p_visit keep a copy of each part sorted by (site_id, country,
-- device_type, ...): ClickHouse picks one by itself for a question naming the site and a
-- country (and a device type), and reads that slice's granules only (AZ+mobile is ~19% of
-- the bench site's events). Country first: it has more values than device type, so a country
-- filter alone is the narrower read; a device filter alone still skips by the second key
-- column within each country. On events, event_type comes next, as in the table's own key:
-- the reads of one type (custom events for goals and event names, outbound clicks) skip the
-- others (goals at 10M: ~1.5x faster than without it in the key). A sampled read (`SAMPLE
-- n`: the summary's bounce rate) uses no projection: it reads `sessions` in its hash order.
--
-- Cost: events and sessions are stored and sorted once more on insert (as p_path, 0015).
-- Erasure's lightweight DELETE drops the projection of the parts it touches
-- (lightweight_mutation_projection_mode = 'drop': set on events by 0015, here on sessions;
-- not 'rebuild', which left deleted rows readable through a projection in this ClickHouse);
-- those parts are read in table order until a merge rewrites them. `sessions` is an
-- AggregatingMergeTree: ClickHouse refuses a projection on it unless told what a merge does
-- to it; 'rebuild' builds the merged part's projection from the merged rows.
-- Parts written before this migration get the projections by a mutation (MATERIALIZE
-- PROJECTION: ~40-60 s for events, ~10 s for sessions at 10M events on 2 busy cores); until a
-- part has it, queries read it in the table's own order, with the same result.
-- The local tables only: in a cluster the shard-spanning tables hold no data.
ALTER TABLE {{table:events}} {{on_cluster}}
    ADD PROJECTION IF NOT EXISTS p_visit
    (SELECT * ORDER BY site_id, country, device_type, event_type, ts);

ALTER TABLE {{table:events}} {{on_cluster}} MATERIALIZE PROJECTION p_visit;

ALTER TABLE {{table:sessions}} {{on_cluster}}
    MODIFY SETTING deduplicate_merge_projection_mode = 'rebuild',
    lightweight_mutation_projection_mode = 'drop';

ALTER TABLE {{table:sessions}} {{on_cluster}}
    ADD PROJECTION IF NOT EXISTS p_visit
    (SELECT * ORDER BY site_id, country, device_type, day, session_id);

ALTER TABLE {{table:sessions}} {{on_cluster}} MATERIALIZE PROJECTION p_visit;
