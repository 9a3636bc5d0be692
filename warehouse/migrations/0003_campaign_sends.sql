-- How many messages an e-mail campaign sent, registered by marketing (`mayak campaign send`,
-- POST /api/marketing/campaigns/{id}/sends); the denominator of open rates. One row per
-- registration (a campaign may go out in several batches); readers sum(sent).
-- No personal data: counts only, kept like the anonymous aggregates.
-- ORDER BY (site_id, campaign_id, sent_on): the open-rate report reads one site's campaigns.
CREATE TABLE IF NOT EXISTS {{table:campaign_sends}} {{on_cluster}}
(
    site_id LowCardinality(String),
    campaign_id LowCardinality(String),
    sent_on Date,
    sent UInt64,
    registered_at DateTime64(3, 'UTC') DEFAULT now64(3),
    registered_by String
)
ENGINE = {{engine:MergeTree}}
ORDER BY (site_id, campaign_id, sent_on)
TTL {{ttl:campaign_sends}};

{{distributed:campaign_sends:cityHash64(site_id)}};
