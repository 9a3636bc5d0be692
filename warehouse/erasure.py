"""Right to erasure and right of access for portal customers (server-hook events).

Responsible for finding every warehouse row linked to a customer's pseudonym, deleting it,
destroying the customer's key (so no old or future pseudonym can be linked to them), recording
an opt-out if asked, and logging the erasure without the customer id.

"Linked" means: events carrying the ``customer_pid``; anonymous events of the same sessions and
visitor ids (a customer's page views before logging in); those sessions' aggregates unless
another identified customer shares them; dead letters mentioning the pseudonym. The rollups
(agg_*) hold no row per person (counts and uniq sketches) and are not touched: their keys are
the scrubbed dimension values, so a customer id, phone or address written into a URL, section,
utm value or campaign never becomes one (``anonymizer.personal``; proven by
tests/stream_jobs/test_sj_privacy.py, which erases such a customer and scans every table).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from clickhouse_connect.driver.client import Client

from anonymizer.pseudonym import customer_pid
from mayak.clock import SYSTEM_CLOCK, Clock
from warehouse.audit import record_erasure
from warehouse.ddl import Layout

EXPORT_COLUMNS = [
    "event_id",
    "event_type",
    "site_id",
    "ts",
    "visitor_id",
    "session_id",
    "customer_pid",
    "path",
    "section",
    "referrer_domain",
    "utm_source",
    "utm_medium",
    "utm_campaign",
    "country",
    "isp",
    "asn",
    "device_type",
    "device_brand",
    "browser",
    "browser_major",
    "os",
    "os_major",
    "engaged_ms",
    "scroll_pct",
    "service_type",
    "campaign_id",
    "consent",
    "event_name",
    "props",
    "outbound_url",
    "section_names",
    "section_ms",
    "channel",
    "source",
    "open_class",
]


class CustomerKeys(Protocol):
    """What erasure needs from the anonymizer's key store (``anonymizer.keystore.KeyStore``)."""

    def has_customer(self, uid: str) -> bool: ...
    def customer_key(self, uid: str) -> bytes: ...
    def forget_customer(self, uid: str) -> bool: ...
    def opt_out(self, uid: str) -> None: ...


@dataclass
class Erasure:
    subject: str
    rows_deleted: dict[str, int] = field(default_factory=dict)
    key_destroyed: bool = False
    opted_out: bool = False

    def as_dict(self) -> dict:
        return {
            "subject": self.subject,
            "rows_deleted": self.rows_deleted,
            "key_destroyed": self.key_destroyed,
            "opted_out": self.opted_out,
        }


def pseudonym_of(keys: CustomerKeys, uid: str) -> str | None:
    """The customer's current pseudonym, or None when they have no key (never seen, or erased)."""
    if not uid or not keys.has_customer(uid):
        return None
    return customer_pid(keys.customer_key(uid), uid)


def erase_customer(
    client: Client,
    keys: CustomerKeys,
    uid: str,
    actor: str,
    via: str,
    opt_out: bool = False,
    layout: Layout | None = None,
    clock: Clock = SYSTEM_CLOCK,
) -> Erasure:
    """Erase everything linked to customer ``uid``; returns (and logs) what was done."""
    layout = layout or Layout.of(client)
    if opt_out:
        keys.opt_out(uid)  # first, so the stream jobs drop this customer's new events
    pid = pseudonym_of(keys, uid)
    erasure = Erasure(subject=pid or "", opted_out=opt_out)
    if pid:
        erasure.rows_deleted = _delete_linked_rows(client, pid, layout)
    erasure.key_destroyed = keys.forget_customer(uid)
    record_erasure(
        client,
        erasure.subject,
        actor,
        via,
        erasure.rows_deleted,
        erasure.key_destroyed,
        opt_out,
        clock,
    )
    return erasure


def _delete_linked_rows(client: Client, pid: str, layout: Layout) -> dict[str, int]:
    visitors = client.query(
        "SELECT groupUniqArrayIf(visitor_id, visitor_id != '') FROM events "
        "WHERE customer_pid = {p:String}",
        parameters={"p": pid},
    ).result_rows[0][0]
    params = {"p": pid, "v": list(visitors)}
    # anonymous rows of the same visitor/session are linked too; rows of ANOTHER identified
    # customer never are (visitor ids can collide, e.g. server hooks without IP, NAT + same UA)
    linked = (
        "customer_pid = {p:String} OR (customer_pid = '' AND "
        "(has({v:Array(String)}, visitor_id) OR has({s:Array(String)}, session_id)))"
    )
    params["s"] = client.query(
        "SELECT groupUniqArrayIf(session_id, session_id != '') FROM events "
        "WHERE customer_pid = {p:String} OR (customer_pid "
        "= '' AND has({v:Array(String)}, visitor_id))",
        parameters=params,
    ).result_rows[0][0]
    # a session aggregate goes only if no other customer's event is part of it
    params["sd"] = [
        r[0]
        for r in client.query(
            "SELECT session_id FROM events WHERE has({s:Array(String)}, "
            "session_id) GROUP BY session_id "
            "HAVING countIf(customer_pid NOT IN ('', {p:String})) = 0",
            parameters=params,
        ).result_rows
    ]
    targets = {
        "events": linked,
        "sessions": "has({sd:Array(String)}, session_id)",
        "failed_events": "position(payload, {p:String}) > 0",
    }
    deleted = {}
    for table, condition in targets.items():
        count = client.query(
            f"SELECT count() FROM {table} WHERE {condition}", parameters=params
        ).result_rows[0][0]
        if count:
            client.command(
                f"DELETE FROM {layout.local(table)} {layout.on_cluster()} WHERE {condition}",
                parameters=params,
            )
        deleted[table] = count
    return deleted


def sweep_late_arrivals(client: Client, layout: Layout | None = None) -> int:
    """Delete events carrying an already-erased pseudonym (they were in flight during erasure).

    An event enriched before the key was destroyed can land after the erasure; its pseudonym is
    in ``erasure_log``, and since the key is gone no new event can carry it, so any such row is
    a late arrival. Cheap (bloom-filter index on customer_pid); run it after erasures settle.
    """
    layout = layout or Layout.of(client)
    condition = (
        "customer_pid != '' AND customer_pid IN "
        "(SELECT subject FROM erasure_log WHERE subject != '')"
    )
    count = client.query(f"SELECT count() FROM events WHERE {condition}").result_rows[0][0]
    if count:
        client.command(
            f"DELETE FROM {layout.local('events')} {layout.on_cluster()} WHERE {condition}"
        )
    return count


def export_customer(client: Client, keys: CustomerKeys, uid: str) -> list[dict]:
    """The customer's pseudonymized events (right of access); empty without a key."""
    pid = pseudonym_of(keys, uid)
    if not pid:
        return []
    result = client.query(
        f"SELECT {', '.join(EXPORT_COLUMNS)} FROM events "
        "WHERE customer_pid = {p:String} ORDER BY ts",
        parameters={"p": pid},
    )
    return [
        {
            k: (v.isoformat() if hasattr(v, "isoformat") else str(v) if k == "event_id" else v)
            for k, v in row.items()
        }
        for row in result.named_results()
    ]
