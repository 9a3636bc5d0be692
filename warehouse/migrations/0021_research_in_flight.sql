-- Research questions in flight (warehouse/ledger.py, "Reservations"). Before a question is
-- checked against the budget, its cost is written here (open = 1); once its ledger row is
-- written, or it is refused, a second row closes it (open = 0). Every budget check counts the
-- open reservations of the researcher besides the ledger, so two dashboards processes over the
-- same ClickHouse cannot both spend the last of a budget: of two questions asked at once, at
-- least one sees the other's reservation (each writes before it reads). The rows hold the
-- question (no answer), the cost and a random id; they matter for minutes, so they are kept a
-- day.
CREATE TABLE IF NOT EXISTS {{table:research_in_flight}} {{on_cluster}}
(
    ts DateTime64(3, 'UTC'),
    researcher String,
    reservation UUID,
    question String,
    epsilon Float64,
    delta Float64,
    open UInt8
)
ENGINE = {{engine:MergeTree}}
ORDER BY (researcher, ts)
TTL {{ttl:research_in_flight}};

{{distributed:research_in_flight:cityHash64(researcher)}};
