"""Dead letters: what the stream jobs send to ``mayak.failed`` instead of an event, and the one
list of the reasons why.

One idea, one name: a step's verdict that a hit does not become an event, the scrubbed record
the pipeline sends of it, and the sink's record of a message it cannot land are each a
``DeadLetter`` with a ``Reason``. The topic (``mayak.failed``), its table (``failed_events``,
``failed_at``) and ``mayak replay-failed`` keep their names: operators and migrations use
them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

Reason = Literal["size", "schema", "consent", "bot", "enrichment", "undecodable"]

#: What each reason means (and which step gives it): the one list, every dead letter has one.
REASONS: dict[Reason, str] = {
    "size": "the raw message is over the size limit (validate)",
    "schema": "not JSON, not an object, an unknown version or a field outside the contract "
    "(validate); the detail names the fields and error types, never values",
    "consent": "the portal customer opted out (consent)",
    "bot": "a crawler, monitor, preview or hosting network (useragent, geo); the detail is "
    "category:family, which the bot_hits table counts",
    "enrichment": "a step raised (the detail is the exception's type), ip_enc cannot be "
    "decrypted (validate) or a sealed mayak.raw message cannot be opened (unseal)",
    "undecodable": "a message on mayak.events or mayak.failed the sink cannot land (sink); "
    "the detail is topic/partition/offset and the error",
}
#: No code fix turns these into events: ``mayak replay-failed`` skips them unless named.
NOT_REPLAYABLE: frozenset[Reason] = frozenset({"bot", "consent"})


@dataclass(frozen=True)
class DeadLetter:
    """Why an event is not one (``reason``, ``detail``: names and types, never values); once
    the pipeline has it, also in which ``step``, the event without secrets (scrubbed) and when
    (``failed_at``, epoch ms). A step returns just the reason and detail."""

    reason: Reason
    detail: str = ""
    step: str = ""
    event: dict[str, Any] = field(default_factory=dict)
    failed_at: int = 0

    def to_record(self) -> dict[str, Any]:
        """The value sent to ``mayak.failed`` (a row of ``failed_events``)."""
        return {
            "reason": self.reason,
            "step": self.step,
            "detail": self.detail,
            "failed_at": self.failed_at,
            "event": self.event,
        }
