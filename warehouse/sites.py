"""Which sites exist, for the read path: a question about an unknown site is an error that
names the known ones, not an answer full of zeros.

A site is known once it has data: at least one row in ``agg_site_hourly`` (every accepted
event lands there; rows are kept 5 years). A site configured in the collector that has not
received an event yet is therefore still unknown to the dashboards.
"""

from __future__ import annotations

from clickhouse_connect.driver.client import Client

from warehouse.question import QueryError

MAX_LISTED = 50


class UnknownSite(QueryError):
    """The site has no data at all (the API answers 404)."""


def known_sites(client: Client) -> list[str]:
    rows = client.query(
        f"SELECT DISTINCT site_id FROM agg_site_hourly ORDER BY site_id LIMIT {MAX_LISTED}"
    ).result_rows
    return [site for (site,) in rows]


class SiteCheck:
    """Raises ``UnknownSite`` for a site without data. A site seen with data stays known (its
    rollup rows are kept 5 years), so the dashboards ask ClickHouse once per site and process,
    not once per call (a product page makes 16)."""

    def __init__(self, client: Client) -> None:
        self._client = client
        self._known: set[str] = set()

    def __call__(self, site: str) -> None:
        if site in self._known:
            return
        found = self._client.query(
            "SELECT 1 FROM agg_site_hourly WHERE site_id = {site:String} LIMIT 1",
            parameters={"site": site},
        ).result_rows
        if not found:
            known = known_sites(self._client)
            raise UnknownSite(
                f"unknown site {site!r}; sites with data: "
                f"{', '.join(known) if known else '(none yet)'}"
            )
        self._known.add(site)
