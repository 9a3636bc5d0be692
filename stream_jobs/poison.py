"""Messages of the internal topics the sink cannot land, and their dead letters.

A corrupt or foreign message on ``mayak.events`` or ``mayak.failed`` (a buggy producer, a bad
disk) once crashed the landing timer and, after each restart, again: the sink now checks each
message's rows with ``valid_event`` / ``valid_dead_letter`` and sends one that fails to
``mayak.failed`` as ``poison_record`` (reason ``undecodable``), lands the rest and goes on.
"""

from __future__ import annotations

import re
import uuid
from datetime import datetime
from typing import Any

import orjson

from stream_jobs.dead_letters import DeadLetter

_UUID_RE = re.compile(
    r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-"
    r"[0-9a-fA-F]{12}"
)


def valid_event(value: Any) -> bool:
    """What the events lander needs of a row (the rest ClickHouse checks)."""
    return (
        isinstance(value, dict)
        and isinstance(value.get("event_id"), str)
        and _UUID_RE.fullmatch(value["event_id"]) is not None
        and isinstance(value.get("ts"), int)
        and isinstance(value.get("site_id"), str)
    )


def valid_dead_letter(value: Any) -> bool:
    """What the dead letters' lander needs of a row (``DeadLetter.to_record``)."""
    return (
        isinstance(value, dict)
        and isinstance(value.get("failed_at"), int)
        and isinstance(value.get("reason"), str)
        and isinstance(value.get("step"), str)
    )


def error_name(exc: BaseException) -> str:
    """``JSONDecodeError`` -> ``orjson.JSONDecodeError``; builtins keep their bare name."""
    kind = type(exc)
    return kind.__name__ if kind.__module__ == "builtins" else f"{kind.__module__}.{kind.__name__}"


def poison_record(topic: str, partition: int, offset: int, error: str, now: datetime) -> bytes:
    """The dead letter of a message of ``topic`` the sink cannot land (reason
    ``undecodable``). Its id is derived from the message's position, so a dead letter sent
    again after a crash is recognised as the same one."""
    position = f"{topic}/{partition}/{offset}"
    letter = DeadLetter(
        "undecodable",
        f"{position}: {error}",
        "sink",
        {"id": str(uuid.uuid5(uuid.NAMESPACE_URL, position))},
        int(now.timestamp() * 1000),
    )
    return orjson.dumps(letter.to_record())
