"""The processing pipeline: a named list of small steps, each returning the hit or a
``DeadLetter`` (``stream_jobs.dead_letters``).

``Pipeline.run(raw)`` is the one place where an exception becomes a dead letter: any step that
raises yields ``DeadLetter(reason="enrichment", step=<name>)`` with the exception's type only
(messages can quote event data). One counter per reason. No Kafka or ClickHouse here. The one
exception that passes: ``KeyStoreUnavailable`` (the shared key store cannot create a key in
time), which is no fault of the event: the worker stops and enriches it again later.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any
from uuid import UUID

import orjson

from anonymizer.keyrecords import KeyStoreUnavailable
from anonymizer.scrub import CUSTOMER, UA, scrub_url, scrub_value, without_secrets
from mayak.clock import SYSTEM_CLOCK, Clock, epoch_ms
from stream_jobs.dead_letters import DeadLetter

log = logging.getLogger("mayak.stream_jobs")

#: Raw fields that are secrets or direct identifiers: never forwarded to ``mayak.failed``.
SECRET_FIELDS = frozenset({"ip", "ip_enc", "ua", "uid", "vid", "recipient"})
URL_FIELDS = ("url", "ref")
MAX_FAILED_EVENT_BYTES = 8192


@dataclass
class Hit:
    """One event in flight: the validated raw fields, its secrets (memory only) and the output."""

    raw: dict[str, Any]
    ip: str | None = None
    ua: str | None = None
    out: dict[str, Any] = field(default_factory=dict)
    consented: bool = False


Step = Callable[[Hit], "Hit | DeadLetter"]


def sanitize(raw: Any) -> dict[str, Any]:
    """The raw event as it may be kept in ``mayak.failed``: no secrets, values scrubbed."""
    if not isinstance(raw, dict):
        return {"_unparsable": True}
    # the event's own identity repeated elsewhere (props, url): no pattern knows every UA or uid
    own = {
        raw.get(k): label
        for k, label in (
            ("ua", UA),
            ("uid", CUSTOMER),
            ("vid", "[vid]"),
            ("recipient", "[recipient]"),
        )
        if isinstance(raw.get(k), str)
    }
    clean: dict[str, Any] = {}
    for key, value in raw.items():
        if key in SECRET_FIELDS:
            continue
        if key in URL_FIELDS and isinstance(value, str):
            clean[key] = without_secrets(scrub_url(value), own)
        elif key == "id" and _is_uuid(value):
            clean[key] = value  # the digits of a UUID are not personal data; replay needs it
        else:
            clean[scrub_value(key)] = without_secrets(  # type: ignore[index]
                scrub_value(value), own
            )
    if len(orjson.dumps(clean)) > MAX_FAILED_EVENT_BYTES:
        keep = ("v", "id", "type", "site", "ts", "received")
        clean = {k: clean[k] for k in keep if k in clean} | {"_truncated": True}
    return clean


def _is_uuid(value: Any) -> bool:
    try:
        UUID(str(value))
        return True
    except ValueError:
        return False


class Pipeline:
    """Runs a parse step, then named steps, and counts every outcome by reason."""

    def __init__(
        self,
        parse: Callable[[Any], Hit | DeadLetter],
        steps: Sequence[tuple[str, Step]],
        clock: Clock = SYSTEM_CLOCK,
        prepare: Callable[[list[Any]], None] | None = None,
    ) -> None:
        """``prepare``: called with a batch's raw events before they run (the key store
        creates their new customers' keys at once: ``processors.key_preparer``)."""
        self.parse = parse
        self.steps = list(steps)
        self.clock = clock
        self._prepare = prepare
        self.counters: Counter[str] = Counter()

    def prepare(self, raws: list[Any]) -> None:
        """Make ready what ``raws`` will need (may raise ``KeyStoreUnavailable``)."""
        if self._prepare is not None and raws:
            self._prepare(raws)

    def run(self, raw: Any) -> dict[str, Any] | DeadLetter:
        """Enriched event (contract field names) or its ``DeadLetter``; raises only
        ``KeyStoreUnavailable``."""
        step_name, source = "validate", raw
        try:
            result = self.parse(raw)
            if isinstance(result, DeadLetter):
                return self.dead_letter(result, step_name, raw)
            hit, source = result, result.raw
            for step_name, step in self.steps:
                outcome = step(hit)
                if isinstance(outcome, DeadLetter):
                    return self.dead_letter(outcome, step_name, hit.raw)
                hit = outcome
            self.counters["ok"] += 1
            return hit.out
        except KeyStoreUnavailable:  # not the event's fault: it must wait, not be dropped
            raise
        except Exception as exc:  # the single dead-letter point
            log.warning(
                "step %s failed with %s; event sent to failed", step_name, type(exc).__name__
            )
            return self.dead_letter(DeadLetter("enrichment", type(exc).__name__), step_name, source)

    def dead_letter(self, letter: DeadLetter, step: str, raw: Any) -> DeadLetter:
        """``letter`` stamped with the step, the scrubbed event and the time."""
        self.counters[letter.reason] += 1
        if isinstance(raw, (bytes, bytearray)):
            try:
                raw = orjson.loads(raw)
            except orjson.JSONDecodeError:
                raw = None
        return replace(
            letter,
            step=step,
            detail=letter.detail[:200],
            event=sanitize(raw),
            failed_at=epoch_ms(self.clock),
        )
