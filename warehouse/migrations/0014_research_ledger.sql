-- Research privacy budget (issue 15). research_ledger: one row per answered research query —
-- who (token name), what (the question as JSON and its digest), the (epsilon, delta) it spent
-- (0 for a repeat, which returns the stored answer), when, and the noisy answer itself, so
-- that an identical question is answered again from here and never re-noised. The answer
-- holds only released (noisy) aggregates. ORDER BY (researcher, ts): the budget check reads
-- one researcher's current period.
CREATE TABLE IF NOT EXISTS {{table:research_ledger}} {{on_cluster}}
(
    ts DateTime64(3, 'UTC'),
    researcher String,
    question String,
    question_hash FixedString(64),
    epsilon Float64,
    delta Float64,
    repeat UInt8,
    answer String
)
ENGINE = {{engine:MergeTree}}
PARTITION BY toYYYYMM(ts)
ORDER BY (researcher, ts)
TTL {{ttl:research_ledger}};

{{distributed:research_ledger:cityHash64(researcher)}};

-- Budgets set by an admin (`mayak research budget set`): one row per change; the latest row of
-- a researcher is in force (argMax by set_at). A researcher without a row gets the default
-- (MAYAK_RESEARCH_BUDGET_EPSILON / _DELTA per month), and so does one not set again for as
-- long as the retention schedule keeps accountability records.
CREATE TABLE IF NOT EXISTS {{table:research_budgets}} {{on_cluster}}
(
    researcher String,
    epsilon Float64,
    delta Float64,
    period LowCardinality(String),
    set_at DateTime64(3, 'UTC'),
    set_by String
)
ENGINE = {{engine:MergeTree}}
ORDER BY (researcher, set_at)
TTL {{ttl:research_budgets}};

{{distributed:research_budgets:cityHash64(researcher)}};
