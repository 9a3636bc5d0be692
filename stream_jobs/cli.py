"""CLI commands of the stream jobs: ``mayak enrich`` and ``mayak replay-failed``."""

from __future__ import annotations

import json
import logging
import sys

import orjson
import typer

from mayak.errors import MayakError
from mayak.settings import Settings
from stream_jobs.dead_letters import NOT_REPLAYABLE, DeadLetter


class _JsonLinesHandler(logging.Handler):
    """Warnings as JSON lines, so stderr stays parseable next to the dead letters."""

    def emit(self, record: logging.LogRecord) -> None:
        sys.stderr.write(json.dumps({"warning": record.getMessage()}) + "\n")


def enrich() -> None:
    """Run the processors offline: raw events (JSON lines, `ip` may be in clear) on stdin ->
    enriched events on stdout, dead letters on stderr. GeoIP databases: MAYAK_GEOIP_CITY,
    MAYAK_GEOIP_ISP / MAYAK_GEOIP_ASN."""
    from stream_jobs.processors import pipeline_from_settings

    root = logging.getLogger("mayak")
    root.addHandler(_JsonLinesHandler(logging.WARNING))
    root.propagate = False
    pipeline = pipeline_from_settings(Settings(), {}, allow_clear_ip=True)
    out, err = sys.stdout.buffer, sys.stderr
    for line in sys.stdin.buffer:
        if not line.strip():
            continue
        result = pipeline.run(line.strip())
        if isinstance(result, DeadLetter):
            err.write(orjson.dumps(result.to_record()).decode() + "\n")
        else:
            out.write(orjson.dumps(result) + b"\n")
    out.flush()


def replay_failed(
    reason: list[str] = typer.Option(
        None, "--reason", "-r", help="only these reasons (default: all but bot, consent)"
    ),
    dry_run: bool = typer.Option(False, help="count what would be replayed, send nothing"),
) -> None:
    """Send dead letters' events (topic mayak.failed) back to mayak.raw, once per event id,
    e.g. after fixing the code that made them dead letters. Their secrets were never kept, so
    replayed events have no IP or user agent (no geo, a one-event visitor)."""
    from stream_jobs.replay import ReplaySelection, read_failed, send_raw

    settings = Settings()
    selection = ReplaySelection(set(reason) if reason else None, NOT_REPLAYABLE)
    try:
        for record in read_failed(settings.kafka_bootstrap, settings.topic_failed):
            selection.offer(record)
        if not dry_run:
            send_raw(settings.kafka_bootstrap, settings.topic_raw, selection.events())
    except Exception as exc:
        if type(exc).__module__.startswith("kafka"):
            raise MayakError(
                f"cannot reach Kafka at {settings.kafka_bootstrap} ({exc}) "
                "-> start it with `mayak kafka start` or `mayak up`"
            ) from exc
        raise
    verb = "would replay" if dry_run else "replayed"
    typer.echo(
        f"{verb} {len(selection.chosen)} event(s); by reason: {selection.by_reason()}; "
        f"skipped {selection.skipped}",
        err=True,
    )


def register(app: typer.Typer) -> None:
    app.command("enrich")(enrich)
    app.command("replay-failed")(replay_failed)
