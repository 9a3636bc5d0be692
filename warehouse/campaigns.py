"""Write path for marketing's campaign sends: how many e-mails a campaign sent (open-rate base)."""

from __future__ import annotations

import re
from datetime import date

from clickhouse_connect.driver.client import Client

from mayak.errors import MayakError

_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")


def register_send(
    client: Client, site: str, campaign_id: str, sent: int, sent_on: date, actor: str
) -> dict:
    """Record that ``campaign_id`` sent ``sent`` messages on ``sent_on`` (adds to earlier
    batches)."""
    if not _ID.match(campaign_id) or not _ID.match(site):
        raise MayakError(
            "campaign and site ids: 1-64 letters, digits, '_', '.', ':' or '-' "
            "-> use the id the e-mail pixel carries"
        )
    if sent <= 0 or sent > 100_000_000:
        raise MayakError(
            f"sent must be a positive count, got {sent} -> give the number of messages"
        )
    client.insert(
        "campaign_sends",
        [[site, campaign_id, sent_on, sent, actor]],
        column_names=["site_id", "campaign_id", "sent_on", "sent", "registered_by"],
    )
    return {"site": site, "campaign_id": campaign_id, "sent": sent, "sent_on": str(sent_on)}
