-- Access audit (policy §10): one row per dashboards/API query — who (token name), with which
-- role, when, what was asked (the whitelisted query spec as JSON, never free SQL), how many
-- cells came back, and the HTTP status. ORDER BY (toDate(ts), actor, ts): audits are read
-- as "what did X query on these days".
CREATE TABLE IF NOT EXISTS {{table:query_audit}} {{on_cluster}}
(
    ts DateTime64(3, 'UTC'),
    actor String,
    role LowCardinality(String),
    endpoint LowCardinality(String),
    request String,
    cells UInt64,
    status UInt16
)
ENGINE = {{engine:MergeTree}}
PARTITION BY toYYYYMM(ts)
ORDER BY (toDate(ts), actor, ts)
TTL {{ttl:query_audit}};

{{distributed:query_audit:rand()}};

-- Erasure log (right to erasure): proof that a customer's data was erased, WITHOUT the raw
-- customer id. `subject` is the customer's pseudonym (customer_pid) as it was before the key
-- was destroyed: every row carrying it is gone, and with the key gone nobody can recompute
-- it from the customer id, so it links to nothing. rows_deleted: per table.
CREATE TABLE IF NOT EXISTS {{table:erasure_log}} {{on_cluster}}
(
    ts DateTime64(3, 'UTC'),
    subject String,
    actor String,
    via LowCardinality(String),
    rows_deleted Map(String, UInt64),
    key_destroyed UInt8,
    opted_out UInt8
)
ENGINE = {{engine:MergeTree}}
ORDER BY ts
TTL {{ttl:erasure_log}};

{{distributed:erasure_log:rand()}};
