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

Upgrading from ``all`` to enrich + sink: the sink's group is new and has no committed offsets,
so the first sink reads the retained ``mayak.events`` / ``mayak.failed`` from their start (7
and 14 days, ``stream_jobs.topics``). Nothing lands twice: the lander skips every offset
already in ClickHouse (one look-up per partition, ``stream_jobs.sink``) and drops event ids
landed before; it costs one pass over the retained messages. Stop every ``all`` worker before
starting enrich workers: they share the group ``worker_id`` but not its topics.
"""

from __future__ import annotations

from enum import StrEnum

from mayak.errors import MayakError
from mayak.settings import Settings


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


def _key_store_kind(settings: Settings) -> str:
    # MAYAK_KEY_STORE (local | kafka) comes with the shared key store; until then: local
    return str(getattr(settings, "key_store", "local"))


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
        if _key_store_kind(settings) == "local" and not settings.keystore_path:
            raise MayakError(
                "an enrich worker needs the key store every enrich worker shares, else each "
                "mints its own salts and customer keys and one visitor gets a pseudonym per "
                "worker -> set MAYAK_KEY_STORE=kafka (the shared key store), or, with every "
                "enrich worker on this host, MAYAK_KEYSTORE_PATH to one key store file for "
                "all of them; `--role all` runs with the local key store as before"
            )
