"""Which failed records ``mayak replay-failed`` sends back."""

from __future__ import annotations

from stream_jobs.dead_letters import NOT_REPLAYABLE
from stream_jobs.replay import ReplaySelection


def _record(reason: str, event_id: str | None, **event) -> dict:
    return {
        "reason": reason,
        "step": "x",
        "detail": "",
        "failed_at": 0,
        "event": {"id": event_id, **event} if event_id else event,
    }


def test_default_selection_skips_bots_consent_and_incomplete_records() -> None:
    selection = ReplaySelection(None, NOT_REPLAYABLE)
    for record in [
        _record("schema", "a"),
        _record("enrichment", "b"),
        _record("bot", "c"),
        _record("consent", "d"),
        _record("schema", None, _unparsable=True),
        _record("schema", "e", _truncated=True),
        _record("schema", "a", url="/x"),
    ]:
        selection.offer(record)
    assert sorted(selection.chosen) == ["a", "b"]
    assert selection.chosen["a"]["url"] == "/x"  # the latest failure of an event wins
    assert selection.by_reason() == {"schema": 1, "enrichment": 1}
    assert selection.skipped == {"not selected": 2, "incomplete": 2}


def test_reason_filter_can_name_any_reason() -> None:
    selection = ReplaySelection({"bot"}, NOT_REPLAYABLE)
    for record in [_record("bot", "c"), _record("schema", "a")]:
        selection.offer(record)
    assert list(selection.chosen) == ["c"]
