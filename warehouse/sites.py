"""Which sites exist, for the read path: a question about an unknown site is an error that
names the known ones, not an answer full of zeros.

A site is known once it has data: at least one row in ``agg_site_hourly`` (every accepted
event lands there; rows are kept 5 years). A site configured in the collector that has not
received an event yet is therefore still unknown to the dashboards.
"""

from __future__ import annotations

from clickhouse_connect.driver.client import Client

from warehouse.query import QueryError

MAX_LISTED = 50


class UnknownSite(QueryError):
    """The site has no data at all (the API answers 404)."""


def known_sites(client: Client) -> list[str]:
    rows = client.query("SELECT DISTINCT site_id FROM agg_site_hourly ORDER BY site_id "
                        f"LIMIT {MAX_LISTED}").result_rows
    return [site for (site,) in rows]


def check_site(client: Client, site: str) -> None:
    """Raise ``UnknownSite`` naming the sites that have data unless ``site`` is one of them."""
    found = client.query("SELECT 1 FROM agg_site_hourly WHERE site_id = {site:String} LIMIT 1",
                         parameters={"site": site}).result_rows
    if not found:
        known = known_sites(client)
        raise UnknownSite(f"unknown site {site!r}; sites with data: "
                          f"{', '.join(known) if known else '(none yet)'}")
