"""One way to open a Kafka admin client: built from the bootstrap with one timeout policy,
closed after use, and a broker that cannot be reached turned into one clear error.

Every production caller (topics, roles, the shared key store's topic, the install guard, the
local broker's readiness probe) opens its admin client here, so an absent broker costs the
same bounded wait everywhere and says the same thing: what to start and what to check.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from mayak.errors import MayakError

if TYPE_CHECKING:
    from kafka import KafkaAdminClient

# How long a request may take (a topic's creation, a group's offsets), and how long to look
# for a broker at all before giving up (kafka-python's own default waits 30 s).
REQUEST_TIMEOUT_MS = 10_000
BOOTSTRAP_TIMEOUT_MS = 5_000


class BrokerUnreachable(MayakError):
    """No Kafka broker answered at the bootstrap address; the message says what to do."""

    def __init__(self, bootstrap: str, cause: BaseException, who: str = "Mayak") -> None:
        super().__init__(unreachable(bootstrap, cause, who))
        self.bootstrap = bootstrap
        self.cause = cause


def unreachable(bootstrap: str, cause: BaseException, who: str = "Mayak") -> str:
    """The one message for a broker that cannot be reached (also for producers/consumers)."""
    return (
        f"{who} cannot reach Kafka at {bootstrap} ({cause}) -> start the broker "
        "(`mayak kafka start`, or `mayak up`), check MAYAK_KAFKA_BOOTSTRAP, "
        "and run the command again"
    )


@contextmanager
def kafka_admin(
    bootstrap: str, who: str = "Mayak", request_timeout_ms: int = REQUEST_TIMEOUT_MS
) -> Iterator[KafkaAdminClient]:
    """An admin client on ``bootstrap``, closed when the block ends. Raises
    ``BrokerUnreachable`` (naming ``who`` needed the broker) if no broker answers within
    ``BOOTSTRAP_TIMEOUT_MS``; errors of the calls inside the block pass unchanged."""
    # imported late: the CLI starts without loading kafka-python when it needs no broker
    from kafka import KafkaAdminClient
    from kafka.errors import KafkaError

    try:
        admin = KafkaAdminClient(
            bootstrap_servers=bootstrap,
            request_timeout_ms=request_timeout_ms,
            bootstrap_timeout_ms=BOOTSTRAP_TIMEOUT_MS,
        )
    except KafkaError as exc:
        raise BrokerUnreachable(bootstrap, exc, who) from exc
    try:
        yield admin
    finally:
        admin.close()
