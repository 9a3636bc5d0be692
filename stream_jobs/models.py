"""Wire formats of the stream jobs' topics and of the session table.

``mayak.events``: batches of enriched events, each an object whose keys are
``ENRICHED_FIELDS`` (the DESIGN.md section 3 contract) plus ``DETAIL_FIELDS`` (issue 12:
custom-event name and props, outbound destination, per-section dwell; scrubbed and bounded by
``stream_jobs.steps.event_details``); the framing and the events' positions are described in
``stream_jobs.batching``. ``mayak.failed``: one ``FailedRecord`` per message. Session table
values: ``SessionState``.
"""

from __future__ import annotations

from typing import Any, TypedDict

ENRICHED_FIELDS = (
    "event_id", "event_type", "site_id", "ts", "visitor_id", "session_id", "customer_pid",
    "path", "section", "referrer_domain", "utm_source", "utm_medium", "utm_campaign",
    "country", "isp", "asn", "device_type", "device_brand", "browser", "browser_major", "os",
    "os_major", "engaged_ms", "scroll_pct", "service_type", "campaign_id", "consent", "is_bot",
)

DETAIL_FIELDS = ("event_name", "props", "outbound_url", "section_names", "section_ms")

#: issue 13 (migration 0013): the visit's traffic channel and source, the e-mail open class
WHO_FIELDS = ("channel", "source", "open_class")


class FailedRecord(TypedDict):
    """One rejection: why, in which step, and the event without secrets (scrubbed)."""

    reason: str  # size | schema | consent | bot | enrichment
    step: str  # validate | consent | useragent | geo | pseudonymize | scrub | sessionize
    detail: str  # field names / error types / bot family, never values
    failed_at: int  # epoch ms
    event: dict[str, Any]


class SessionState(TypedDict, total=False):
    """Per visitor: first and last hit (epoch ms) of the current session; once a hit set them,
    the visit's channel and source (``stream_jobs.channels``)."""

    start: int
    last: int
    ch: str
    src: str
