"""The collector's Kafka producer: answers only after the broker acknowledged every record.

kafka-python's ``send`` can block (waiting for metadata while the broker is down, or for buffer
space), so all sends run on one dedicated thread, which also keeps one visitor's records in
arrival order. The event loop awaits the broker's acks through futures bridged from the
producer's I/O thread. At most ``max_pending`` records may await acks; past that, and when the
acks do not come within ``ack_timeout``, the caller gets ``Unavailable`` and answers 503.
The producer is idempotent with acks=all and retries, so a broker restart neither loses nor
duplicates an acknowledged record.
"""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Any

log = logging.getLogger("mayak.collector")


class Unavailable(Exception):
    """The broker did not acknowledge in time, or the buffer is full: answer 503."""


class Outbox:
    """Owns one KafkaProducer (created lazily, so the collector starts while Kafka is down)."""

    def __init__(self, bootstrap: str, topic: str, *, max_pending: int, ack_timeout: float,
                 producer_factory: Any = None) -> None:
        self.bootstrap = bootstrap
        self.topic = topic
        self.max_pending = max_pending
        self.ack_timeout = ack_timeout
        self.pending = 0
        self._factory = producer_factory or self._kafka_producer
        self._producer: Any = None
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="mayak-outbox")

    def _kafka_producer(self) -> Any:
        from kafka import KafkaProducer

        timeout_ms = int(self.ack_timeout * 1000)
        return KafkaProducer(
            bootstrap_servers=self.bootstrap, acks="all", enable_idempotence=True,
            linger_ms=5, compression_type="gzip", retries=2**31 - 1,
            request_timeout_ms=min(10_000, timeout_ms), delivery_timeout_ms=timeout_ms + 5_000,
            max_block_ms=timeout_ms, bootstrap_timeout_ms=timeout_ms,
            reconnect_backoff_max_ms=1_000, client_id="mayak-collector")

    def _send_all(self, records: list[tuple[bytes, bytes]]) -> list[Any]:
        if self._producer is None:
            self._producer = self._factory()
        return [self._producer.send(self.topic, key=k, value=v) for k, v in records]

    @staticmethod
    def _bridge(loop: asyncio.AbstractEventLoop, kfut: Any) -> asyncio.Future:
        fut = loop.create_future()

        def done(value: Any) -> None:
            if not fut.done():
                fut.set_result(value)

        def fail(exc: BaseException) -> None:
            if not fut.done():
                fut.set_exception(exc)

        kfut.add_callback(lambda md: loop.call_soon_threadsafe(done, md))
        kfut.add_errback(lambda exc: loop.call_soon_threadsafe(fail, exc))
        return fut

    async def produce(self, records: list[tuple[bytes, bytes]]) -> None:
        """Return once the broker acknowledged every record; raise ``Unavailable`` otherwise."""
        if self.pending + len(records) > self.max_pending:
            raise Unavailable("buffer full")
        loop = asyncio.get_running_loop()
        self.pending += len(records)
        try:
            async with asyncio.timeout(self.ack_timeout):
                kfuts = await loop.run_in_executor(self._thread, self._send_all, records)
                await asyncio.gather(*(self._bridge(loop, f) for f in kfuts))
        except Exception as exc:  # timeouts, broker errors, producer construction
            log.warning("mayak collector: %d event(s) not acknowledged: %s", len(records),
                        type(exc).__name__)
            raise Unavailable(type(exc).__name__) from exc
        finally:
            self.pending -= len(records)

    def close(self, timeout: float = 10.0) -> None:
        """Flush what is buffered and close the producer."""
        def _close() -> None:
            if self._producer is not None:
                self._producer.flush(timeout)
                self._producer.close(timeout)
        self._thread.submit(_close).result(timeout + 5)
        self._thread.shutdown()
