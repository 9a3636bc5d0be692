-- Per-visit figures of a busy unfiltered range (the summary's bounce rate and visit duration,
-- entry/exit pages, the visits of goals and funnels) read a sample of whole visits from
-- `sessions`: those whose cityHash64(session_id) is below a cut (warehouse/visit_sample.py).
-- The table is ordered by (site_id, day, hash, ...): each day of each part holds its sample at
-- the start of its hash run, but a day of a part is about one 8192-row granule, so the sample
-- of 10% read 129 of 290 granules at 10M events (1.06M rows for 165k sampled ones, the
-- aggregate states of entry and exit pages decoded for every row). The projection p_sample
-- keeps each part sorted by the hash first: the sample of a site is one run of granules (22
-- of 290 here), 0.26 -> 0.15 s of CPU for entry/exit. ClickHouse picks it by itself when it
-- reads fewer granules than the table's order (a sample over several days); a read of every
-- visit, or of a country and device (p_visit, 0017), keeps its own order. The day comes last,
-- so a sampled read takes the site's sample of each month partition the range touches.
--
-- Cost: sessions are stored and sorted once more on insert (as p_visit; +163 MiB at 10M
-- events, p_visit 154 MiB). `sessions` already has deduplicate_merge_projection_mode =
-- 'rebuild' and lightweight_mutation_projection_mode = 'drop' (0017): erasure's DELETE drops
-- the projection of the parts it touches, which are then read in table order until a merge
-- rewrites them. Parts written before this migration
-- get the projection by a mutation (MATERIALIZE PROJECTION: ~4 s at 10M events); until a part
-- has it, queries read it in the table's own order, with the same result.
-- The local table only: in a cluster the shard-spanning table holds no data.
ALTER TABLE {{table:sessions}} {{on_cluster}}
    ADD PROJECTION IF NOT EXISTS p_sample
    (SELECT * ORDER BY site_id, cityHash64(session_id), session_id, day);

ALTER TABLE {{table:sessions}} {{on_cluster}} MATERIALIZE PROJECTION p_sample;
