-- The funnel of a busy range (issue 14): it reads a sample of whole visits, the visits whose
-- `cityHash64(session_id)` falls below a cut (`warehouse.visit_sample`), and its step events
-- are pageviews of a few path prefixes, read through the projection p_path (0015). At 10M
-- events that is ~2.9M rows whose session_id (a ~20-byte string) was read and hashed only to
-- keep a tenth of them: most of the call's time. `session_hash` keeps that hash, computed once
-- on insert (MATERIALIZED: an insert cannot set it, and `SELECT *` does not return it), so the
-- sampled funnel reads 8 bytes per row and groups the sampled visits by it.
--
-- p_path (`SELECT *`) was defined before the column and cannot hold it: a query naming
-- session_hash would no longer use it. It is dropped and defined again with the column. Until
-- the mutations below are done, a part without the column computes it from session_id when it
-- is read, and a part without the new projection is read in the table's own order: slower,
-- same result. Cost (10M events): 8 bytes per event twice (table + p_path), random and so
-- incompressible (~160 MB); MATERIALIZE PROJECTION p_path again (~75 s on 2 busy cores).
-- p_visit (0017) keeps its columns: the funnel's custom events are read in table order.
-- Each ADD COLUMN runs on the local table and, in a cluster, on the shard-spanning table in
-- front of it (in single-node mode both names are the same table).
ALTER TABLE {{table:events}} {{on_cluster}}
    ADD COLUMN IF NOT EXISTS session_hash UInt64 MATERIALIZED cityHash64(session_id);

ALTER TABLE events {{on_cluster}}
    ADD COLUMN IF NOT EXISTS session_hash UInt64 MATERIALIZED cityHash64(session_id);

ALTER TABLE {{table:events}} {{on_cluster}} MATERIALIZE COLUMN session_hash;

ALTER TABLE {{table:events}} {{on_cluster}} DROP PROJECTION IF EXISTS p_path;

ALTER TABLE {{table:events}} {{on_cluster}}
    ADD PROJECTION IF NOT EXISTS p_path (SELECT *, session_hash ORDER BY site_id, path, ts);

ALTER TABLE {{table:events}} {{on_cluster}} MATERIALIZE PROJECTION p_path;
