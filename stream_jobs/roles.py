"""What one stream worker process runs: its role, its consumer group, and the checks made before
it starts (``mayak worker --role enrich|sink|all``).

* ``all`` (the default, what ``mayak up`` runs): the enrich agent and the landers in one Faust
  app, consumer group ``worker_id``, exactly as before roles existed.
* ``enrich``: the enrich agent only (``mayak.raw`` -> ``mayak.events`` / ``mayak.failed``), the
  session table and the salt purge timer; no ClickHouse client, no migrations, no dashboards.
  Consumer group ``worker_id`` (the group of ``all``: its ``mayak.raw`` offsets and its session
  changelog carry over). Run as many as ``mayak.raw`` has partitions, on any host.
* ``sink``: the landers only (``mayak.events`` / ``mayak.failed`` -> ClickHouse), plus the
  dashboards thread with embedded ClickHouse. Consumer group ``worker_id + "-sink"``: Faust's
  assignor assumes every member of a group subscribes to the same topics, so members with
  different agents must not share one.

Upgrading from ``all`` to enrich + sink: the sink's group is new. On its first start (the
group has no offsets of ``mayak.events`` / ``mayak.failed``) a sink takes the offsets the
group of ``all`` committed for them (``adopt_offsets_of_all``), so it resumes where the
``all`` worker stopped. If that cannot be done (the broker refuses, or the group of ``all``
never committed), the sink reads the retained messages from their start (7 and 14 days,
``stream_jobs.topics``); nothing lands twice even then: the lander skips every offset already
in ClickHouse and drops event ids landed before (``stream_jobs.sink``), at the cost of one
pass over what is retained. Stop every ``all`` worker before starting enrich workers: they
share the group ``worker_id`` but not its topics. Going back from roles to ``all``: the group
of ``all`` resumes ``mayak.events`` from its old offsets, and the lander skips what is landed.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum
from typing import Any, TypeVar

from mayak.clock import SYSTEM_CLOCK, Clock
from mayak.errors import MayakError
from mayak.kafka_admin import BrokerUnreachable, kafka_admin
from mayak.settings import Settings

T = TypeVar("T")


class Role(StrEnum):
    """The agents a worker process runs."""

    ALL = "all"
    ENRICH = "enrich"
    SINK = "sink"

    @property
    def enriches(self) -> bool:
        return self is not Role.SINK

    @property
    def sinks(self) -> bool:
        return self is not Role.ENRICH


def group_id(settings: Settings, role: Role) -> str:
    """The Faust app id, which is the consumer group (and the prefix of its changelog
    topics): ``worker_id``, and ``worker_id-sink`` for the sink role."""
    return f"{settings.worker_id}-sink" if role is Role.SINK else settings.worker_id


def check_role(settings: Settings, role: Role, dashboards: bool) -> None:
    """Refuse a role that cannot work as configured, saying what to set.

    * an enrich worker with the default per-data-dir key store would mint salts and customer
      keys of its own: the same visitor would get another pseudonym on each worker. It needs
      a key store shared by every enrich worker: ``MAYAK_KEY_STORE=kafka``, or (workers on
      one host) ``MAYAK_KEYSTORE_PATH`` naming one SQLite file for all of them;
    * an enrich worker has no ClickHouse client, so it cannot serve the dashboards;
    * several sinks may share a ClickHouse server, but embedded ClickHouse (chDB) is one
      process's files: the sink writing there must be the only writer (its start-up repair
      of interrupted inserts relies on it), which this cannot check across hosts; nothing to
      refuse here, but the README says "one sink with embedded ClickHouse".
    """
    if role is Role.ENRICH:
        if dashboards:
            raise MayakError(
                "an enrich worker has no ClickHouse client and cannot serve the dashboards: "
                "drop --dashboards (the sink worker or `mayak dashboards` serves them)"
            )
        if settings.key_store == "local" and not settings.keystore_path:
            raise MayakError(
                "an enrich worker needs the key store every enrich worker shares, else each "
                "mints its own salts and customer keys and one visitor gets a pseudonym per "
                "worker -> set MAYAK_KEY_STORE=kafka (the shared key store), or, with every "
                "enrich worker on this host, MAYAK_KEYSTORE_PATH to one key store file for "
                "all of them; `--role all` runs with the local key store as before"
            )


def adopt_offsets_of_all(
    settings: Settings, log: Callable[[str], object] = print
) -> dict[Any, int]:
    """A sink's first start after role ``all``: copy the group of ``all``'s committed offsets of
    ``mayak.events`` / ``mayak.failed`` to the sink's group, if the sink's group has none.
    Returns what was copied (topic partition -> offset); {} when nothing was to copy or the
    broker refused (the sink then reads from the start and skips what is landed)."""
    from kafka.errors import GroupIdNotFoundError, KafkaError, NoError
    from kafka.structs import OffsetAndMetadata

    sink, legacy = group_id(settings, Role.SINK), group_id(settings, Role.ALL)
    topics = {settings.topic_events, settings.topic_failed}
    try:
        with kafka_admin(settings.kafka_bootstrap) as admin:

            def committed(group: str) -> dict[Any, int]:
                try:
                    found = retrying(lambda: admin.list_group_offsets({group: None}))
                except GroupIdNotFoundError:
                    return {}
                offsets = found.get(group, {})
                return {tp: m.offset for tp, m in offsets.items() if tp.topic in topics}

            if any(offset >= 0 for offset in committed(sink).values()):
                return {}  # not the first start
            adopted = {tp: offset for tp, offset in committed(legacy).items() if offset >= 0}
            if not adopted:
                return {}
            moved = {tp: OffsetAndMetadata(offset, "", -1) for tp, offset in adopted.items()}
            errors = retrying(lambda: admin.alter_group_offsets(sink, moved))
    except (KafkaError, BrokerUnreachable) as exc:
        log(
            f"could not give the sink's group {sink!r} the offsets of {legacy!r} "
            f"({exc!r}): {_FALLBACK}"
        )
        return {}
    refused = {tp: error for tp, error in errors.items() if error is not NoError}
    if refused:
        log(f"the sink's group {sink!r} refused the offsets of {legacy!r} {refused}: {_FALLBACK}")
        return {}
    log(
        f"the sink's group {sink!r} starts where {legacy!r} stopped on "
        f"{', '.join(sorted(topics))} ({len(adopted)} partition(s))"
    )
    return adopted


def refuse_a_second_embedded_sink(
    settings: Settings,
    wait_seconds: float | None = None,
    clock: Clock = SYSTEM_CLOCK,
    log: Callable[[str], object] = print,
) -> None:
    """With embedded ClickHouse the sink must be the only member of its group: a second sink
    (another data directory, another host) would take some of ``mayak.events``' partitions
    into a warehouse of its own. (A second one on the same chDB path cannot open it at all.)
    A member still listed may be this sink's own previous run, killed: waits until the
    group's session timeout has passed (``wait_seconds``, default that timeout + 5 s) before
    refusing. A broker that cannot answer is not a reason to refuse: Faust will tell."""
    if not settings.embedded_clickhouse:
        return  # several sinks against one ClickHouse server share it
    from kafka.errors import KafkaError

    group = group_id(settings, Role.SINK)
    wait = settings.worker_session_timeout_s + 5 if wait_seconds is None else wait_seconds
    deadline = clock.monotonic() + wait
    try:
        with kafka_admin(settings.kafka_bootstrap) as admin:
            while True:
                try:
                    described = retrying(lambda: admin.describe_groups([group]), clock=clock)
                except KafkaError as exc:
                    log(f"could not check that this is the only sink of {group!r} ({exc!r})")
                    return
                members = described.get(group, {}).get("members") or []
                if not members:
                    return
                if clock.monotonic() > deadline:
                    hosts = sorted({str(m.get("client_host", "?")) for m in members})
                    raise MayakError(
                        f"another sink is running in consumer group {group!r} (from {hosts}): "
                        "with embedded ClickHouse one sink lands every event into its own chDB "
                        "files, and a second would take part of mayak.events into a warehouse "
                        "of its own -> stop the other sink, or point every sink at one "
                        "ClickHouse server (MAYAK_CLICKHOUSE_DSN=http://...)"
                    )
                clock.sleep_blocking(1.0)
    except BrokerUnreachable as exc:
        log(f"could not check that this is the only sink of {group!r} ({exc.cause!r})")


def retrying(call: Callable[[], T], seconds: float = 20.0, clock: Clock = SYSTEM_CLOCK) -> T:
    """``call()``, again while Kafka answers with a retriable error (the group coordinator of
    a broker that just started is not available for a few seconds) for up to ``seconds``."""
    from kafka.errors import KafkaError

    deadline = clock.monotonic() + seconds
    while True:
        try:
            return call()
        except KafkaError as exc:
            if not exc.retriable or clock.monotonic() > deadline:
                raise
            clock.sleep_blocking(0.5)


_FALLBACK = "it reads mayak.events from the start and skips what is landed"
