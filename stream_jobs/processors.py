"""Thin processor (foundation): raw event dict -> enriched event dict (pure, no I/O).

The stream-jobs issue replaces this with the named steps (validate, enrich, pseudonymize ...).
"""

from __future__ import annotations

from urllib.parse import urlsplit


def process(raw: dict) -> dict:
    return {
        "event_id": raw["id"],
        "event_type": raw.get("type", "pageview"),
        "site_id": raw["site"],
        "ts": int(raw.get("ts") or raw["received"]),  # epoch ms
        "path": urlsplit(raw.get("url") or "/").path or "/",
    }
