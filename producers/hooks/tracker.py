"""``track()`` for portal code: build a raw event and hand it to Kafka without ever blocking.

A ``Tracker`` validates the event against ``contract.schema.RawEvent`` on the caller's thread
(so a wrong field fails loudly in development), then queues it; one daemon thread produces the
queue to ``mayak.raw`` with kafka-python (acks=all, idempotent), keyed by a keyed hash of the
customer id, each value sealed (``contract.raw_seal``). A full queue drops the event and
counts it: analytics must never slow the portal.
"""

from __future__ import annotations

import logging
import queue
import threading
import uuid
from collections.abc import Callable
from typing import Any

from anonymizer.master import load_master_secret
from contract import raw_seal
from contract.crypto import partition_key, partition_secret
from contract.schema import RawEvent
from mayak.clock import SYSTEM_CLOCK, Clock, epoch_ms
from producers.collector.door import trim_url

log = logging.getLogger("mayak.hooks")
Sink = Callable[[bytes, bytes], None]  # (key, value) -> None, may raise


class Tracker:
    """Owns one producer thread and a bounded queue; ``track`` is safe from any thread."""

    def __init__(
        self,
        site: str,
        sink: Sink,
        key_secret: bytes,
        *,
        max_queue: int = 10_000,
        clock: Clock = SYSTEM_CLOCK,
        on_close: Callable[[], None] | None = None,
    ) -> None:
        self.site = site
        self._sink = sink
        self._secret = key_secret
        self._clock = clock
        self._on_close = on_close
        self._q: queue.Queue[tuple[bytes, bytes] | None] = queue.Queue(max_queue)
        self.dropped = 0
        self.failed = 0
        self._thread = threading.Thread(target=self._run, name="mayak-hooks", daemon=True)
        self._thread.start()

    @classmethod
    def from_settings(cls, settings: Any) -> Tracker:
        """A tracker producing to ``settings.topic_raw`` on ``settings.kafka_bootstrap``."""
        from kafka import KafkaProducer

        # built on the tracker's thread at its first event, not here: kafka-python's
        # constructor waits up to 30 s for an unreachable broker, and this runs in the
        # portal's first tracked request (an event loop, under ASGI); a failed build is
        # tried again at the next event
        built: list[KafkaProducer] = []
        topic = settings.topic_raw
        master = load_master_secret(settings.ip_key, settings.data_dir)
        seal = raw_seal.sealer(raw_seal.raw_seal_key(master))

        def sink(key: bytes, value: bytes) -> None:
            if not built:
                built.append(
                    KafkaProducer(
                        bootstrap_servers=settings.kafka_bootstrap,
                        acks="all",
                        enable_idempotence=True,
                        linger_ms=20,
                        compression_type=None,  # each value is compressed inside its seal
                        max_block_ms=10_000,
                    )
                )
            # the customer id and the User-Agent rest in Kafka as ciphertext only
            built[0].send(topic, key=key, value=seal(value))

        def close() -> None:
            for producer in built:
                producer.flush(10)
                producer.close(5)

        return cls(settings.hooks_site, sink, partition_secret(master), on_close=close)

    def track(self, event_type: str, **fields: Any) -> RawEvent:
        """Validate and enqueue one event; returns it. Raises ``ValueError`` if invalid."""
        now = epoch_ms(self._clock)
        fields.setdefault("ts", now)
        for name in ("url", "ref"):  # trimmed as the collector trims them (no query values)
            if fields.get(name):
                fields[name] = trim_url(fields[name], frozenset())
        if fields.get("uid") not in (None, ""):
            fields["uid"] = str(fields["uid"])  # the portal's ids are often integers
        event = RawEvent(
            id=uuid.uuid4(),
            type=event_type,
            site=fields.pop("site", self.site),
            received=now,
            **fields,
        )
        who = event.uid or event.vid or str(event.id)
        try:
            self._q.put_nowait((partition_key(self._secret, event.site, who), event.to_json()))
        except queue.Full:
            self.dropped += 1
        return event

    def _run(self) -> None:
        while (item := self._q.get()) is not None:
            try:
                self._sink(*item)
            except Exception:  # a broken broker must not kill the thread; count and go on
                self.failed += 1
                log.warning("mayak: could not produce a hook event", exc_info=True)
            finally:
                self._q.task_done()
        self._q.task_done()

    def flush(self) -> None:
        """Block until every queued event has been handed to the sink."""
        self._q.join()

    def close(self) -> None:
        """Drain the queue, stop the thread, flush and close the producer."""
        self._q.put(None)
        self._thread.join(30)
        if self._on_close:
            self._on_close()


_default: Tracker | None = None
_lock = threading.Lock()


def configure(tracker: Tracker | None) -> None:
    """Set (or clear) the process-wide tracker used by ``track()`` and the middlewares."""
    global _default
    with _lock:
        _default = tracker


def default_tracker() -> Tracker:
    """The configured tracker, or one built from ``Settings()`` on first use."""
    global _default
    with _lock:
        if _default is None:
            # the portal imports the hooks: Settings (pydantic-settings, the environment) only
            # when it configured no tracker of its own
            from mayak.settings import Settings

            _default = Tracker.from_settings(Settings())
        return _default


def track(event_type: str, **fields: Any) -> RawEvent:
    """Emit one event from portal code, e.g. ``track("service_request", uid=..., ...)``."""
    return default_tracker().track(event_type, **fields)
