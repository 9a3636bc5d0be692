"""The data directory's identity: refuse to mint new keys beside data of an earlier install.

Responsible for three things every Mayak process that writes does before it starts:

* the data directory exists with mode 0700 and the process creates files 0600 / dirs 0700
  (``private_umask``), so broker segments, chDB parts and keys are not world-readable;
* an **install id** is kept in two places, the key store (``KeyStore.install_id``) and
  ``data_dir/install.id``. At start (``check_install``), a missing key store next to anything
  an earlier install left (the marker, events in the warehouse, committed Kafka offsets of
  the worker's group) stops the process with what to restore, instead of silently
  creating new keys. That evidence (a warehouse count, a Kafka admin call) is gathered only
  when the key store is missing, and a broker that cannot be asked fails closed (an error
  saying to start it), never "no evidence": pseudonyms in the warehouse would no longer match
  new events, and an erasure could no longer find a customer's rows. ``reset_keys=True``
  (``--reset-keys``) starts over deliberately. API tokens are no evidence: they do not depend
  on the keys, and an operator may well create them before the first start. A key store of
  another install (ids differ) is refused too;
* while the worker runs, ``KeyStoreWatch`` notices the key store file vanishing or being
  replaced (SQLite would keep writing into the unlinked file, and the keys would be lost at
  exit) and stops the worker with the same message.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from anonymizer.keystore import (
    keystore_exists,
    keystore_from_settings,
    keystore_location,
    keystore_path,
)
from mayak.clock import SYSTEM_CLOCK, Clock
from mayak.errors import MayakError
from mayak.kafka_admin import BrokerUnreachable, kafka_admin
from mayak.settings import Settings

if TYPE_CHECKING:
    from clickhouse_connect.driver.client import Client

UMASK = 0o077
RESTORE = (
    "restore the key store from its backup to {keys} (`mayak keys restore FILE`, or point "
    "MAYAK_KEYSTORE_PATH at a copy of the file) and start again; to start over "
    "deliberately with new keys (pseudonyms already stored can then no longer be linked "
    "to customers or erased by customer id), run "
    "`mayak up --reset-keys`"
)


def private_umask() -> None:
    """Files this process (and its children) create: 0600, directories 0700."""
    os.umask(UMASK)


def marker_path(settings: Settings) -> Path:
    return settings.data_dir / "install.id"


def secure_data_dir(settings: Settings) -> None:
    """Create the data directory 0700 (and tighten it if it was group/world-accessible)."""
    settings.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    if settings.data_dir.stat().st_mode & 0o077:
        settings.data_dir.chmod(0o700)


Evidence = Callable[[], list[str]]  # what one place holds of an earlier install


def evidence(settings: Settings, sources: Sequence[Evidence] = ()) -> list[str]:
    """What an earlier install left in place (besides the key store): the marker, else the
    first of ``sources`` (asked in order, cheapest first) that finds anything."""
    if marker_path(settings).exists():
        return [f"the install marker {marker_path(settings)}"]
    for source in sources:
        found = source()
        if found:
            return found
    return []


def refuse_lost_keys(settings: Settings, sources: Sequence[Evidence] = ()) -> None:
    """Raise if the key store is missing beside an earlier install's data (creates nothing).
    ``sources`` are asked only when the key store is missing."""
    keys_at = keystore_location(settings)
    if not keystore_exists(settings):
        left = evidence(settings, sources)
        if left:
            raise MayakError(
                f"the key store {keys_at} is missing, but {'; '.join(left)} "
                f"exist(s) from an earlier start -> {RESTORE.format(keys=keys_at)}"
            )


def warehouse_evidence(client: Client) -> list[str]:
    """Events in the warehouse: they carry pseudonyms made with the keys of an earlier start.
    (Only migrated tables are no evidence: `mayak migrate` may run before the first start.)"""
    if not client.command("EXISTS TABLE events"):
        return []
    if not client.query("SELECT count() FROM events").result_rows[0][0]:
        return []
    return [f"events in the warehouse (database {client.database})"]


def check_install(
    settings: Settings, reset_keys: bool = False, sources: Sequence[Evidence] = ()
) -> str:
    """Open (or, on a fresh data dir, create) the key store and match it with the marker.

    ``sources``: where else an earlier install may have left data (``warehouse_evidence``,
    ``worker_offsets_evidence``), asked only when the key store is missing. Returns the
    install id. Raises ``MayakError`` saying what to restore when the key store is
    missing beside an earlier install's data, or belongs to another install.
    """
    secure_data_dir(settings)
    keys_at = keystore_location(settings)
    marker = marker_path(settings)
    if not reset_keys:
        refuse_lost_keys(settings, sources)
    keys = keystore_from_settings(settings)  # the file, or the topic every worker shares
    try:
        install_id = keys.install_id
    finally:
        keys.close()
    recorded = marker.read_text().strip() if marker.exists() else None
    if recorded not in (None, install_id) and not reset_keys:
        raise MayakError(
            f"the key store {keys_at} belongs to another install than this data "
            f"directory ({marker} says {recorded}) -> " + RESTORE.format(keys=keys_at)
        )
    if recorded != install_id:
        marker.write_text(install_id + "\n")
        marker.chmod(0o600)
    return install_id


def worker_offsets_evidence(
    settings: Settings, wait_seconds: float = 20.0, clock: Clock = SYSTEM_CLOCK
) -> list[str]:
    """Committed offsets of the worker's consumer group: events of an earlier install were
    processed (with keys that must still exist).

    Raises ``MayakError`` when the broker cannot answer (down, or its group coordinator still
    unavailable after ``wait_seconds``): without the answer new keys could be minted beside
    an earlier install's data."""
    from kafka.errors import GroupIdNotFoundError, KafkaError

    deadline = clock.monotonic() + wait_seconds
    try:
        with kafka_admin(settings.kafka_bootstrap) as admin:
            while True:
                try:
                    offsets = admin.list_group_offsets({settings.worker_id: None}).get(
                        settings.worker_id, {}
                    )
                    break
                except GroupIdNotFoundError:  # never consumed anything
                    return []
                except KafkaError as exc:  # e.g. the coordinator of a fresh broker is loading
                    if not exc.retriable or clock.monotonic() > deadline:
                        raise MayakError(_no_broker(settings, exc)) from exc
                    clock.sleep_blocking(0.5)
    except BrokerUnreachable as exc:
        raise MayakError(_no_broker(settings, exc.cause)) from exc
    mine = {settings.topic_raw, settings.topic_events}
    if any(tp.topic in mine and meta.offset >= 0 for tp, meta in offsets.items()):
        return [f"committed Kafka offsets of consumer group {settings.worker_id!r}"]
    return []


def _no_broker(settings: Settings, exc: BaseException) -> str:
    keys_at = keystore_location(settings)
    return (
        f"the key store {keys_at} is missing and Kafka at {settings.kafka_bootstrap} cannot "
        f"say whether an earlier install's events were processed ({exc}) "
        "-> start the broker (`mayak up` starts it; check MAYAK_KAFKA_BOOTSTRAP) "
        "and start again, so that no new keys are minted beside an earlier install's data; "
        f"if this data directory had one: {RESTORE.format(keys=keys_at)}"
    )


class KeyStoreWatch:
    """Calls ``on_lost(message)`` once if the key store file (or the install marker) vanishes
    or is replaced while the process runs (checked every ``interval`` seconds in a thread), or
    a shared key store of this process fails for good (its topic lost, another master secret)."""

    def __init__(
        self, settings: Settings, on_lost: Callable[[str], None], interval: float = 1.0
    ) -> None:
        # a shared key store (MAYAK_KEY_STORE=kafka) has no file here: the marker is watched
        local = settings.key_store == "local"
        self.paths = ([keystore_path(settings)] if local else []) + [marker_path(settings)]
        self.location = keystore_location(settings)
        self.on_lost = on_lost
        self.interval = interval
        self._ids = [self._identity(p) for p in self.paths]
        self._stop = threading.Event()
        self._fired = threading.Event()
        self._thread = threading.Thread(target=self._run, name="keystore-watch", daemon=True)
        if not local:  # the shared store reports a lost topic or another master secret itself
            from anonymizer.keylog import on_store_failure

            on_store_failure(self._store_failed)

    @staticmethod
    def _identity(path: Path) -> tuple[int, int] | None:
        try:
            st = path.stat()
        except OSError:
            return None
        return st.st_dev, st.st_ino

    def start(self) -> KeyStoreWatch:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def lost(self) -> str | None:
        for path, seen in zip(self.paths, self._ids):
            if self._identity(path) != seen:
                return (
                    f"{path} was removed or replaced while Mayak ran (was the data directory "
                    "deleted?): stopping so that no new keys are minted beside the stored "
                    f"data -> {RESTORE.format(keys=self.location)}"
                )
        return None

    def _store_failed(self, message: str) -> None:
        if not self._stop.is_set() and not self._fired.is_set():
            self._fired.set()
            self.on_lost(message)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            message = self.lost()
            if message and not self._fired.is_set():
                self._fired.set()
                self.on_lost(message)
                return
