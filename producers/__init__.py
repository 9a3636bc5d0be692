"""Producers: everything that emits or accepts events (beacon, collector, pixel, server hooks)."""
