"""Wire formats of the stream jobs' topics and of the session table.

``mayak.events``: batches of enriched events, each an object whose keys are
``ENRICHED_FIELDS`` (the DESIGN.md section 3 contract) plus ``DETAIL_FIELDS`` (issue 12:
custom-event name and props, outbound destination, per-section dwell; scrubbed and bounded by
``stream_jobs.steps.event_details``); the framing and the events' positions are described in
``stream_jobs.batching``. ``mayak.failed``: one dead letter per message
(``stream_jobs.dead_letters.DeadLetter.to_record``). Session table values, per visitor:
``start`` and ``last``, the current session's first and last hit (epoch ms,
``stream_jobs.steps.sessionize_step``), and once a hit set them ``ch`` and ``src``, the
visit's channel and source (``stream_jobs.channels``).
"""

from __future__ import annotations

ENRICHED_FIELDS = (
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
    "is_bot",
)

DETAIL_FIELDS = ("event_name", "props", "outbound_url", "section_names", "section_ms")

#: issue 13 (migration 0013): the visit's traffic channel and source, the e-mail open class
WHO_FIELDS = ("channel", "source", "open_class")
