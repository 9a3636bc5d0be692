"""The collector's fast paths give exactly what the slow, obvious ones give: the record written
without a second pydantic pass, the memoised partitioner, the bare ASGI answers, and the
outbox that groups requests into one sender thread (acks, failures and timeouts per request)."""

from __future__ import annotations

import asyncio
import base64
import os
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import orjson
import pytest
from kafka.future import Future
from kafka.partitioner import DefaultPartitioner
from starlette.responses import JSONResponse

from anonymizer.pseudonym import keyed_hash
from contract import crypto, raw_seal
from contract.raw_frames import events_of, frame
from contract.schema import ClientEvent
from mayak.settings import Settings
from producers.collector.app import _json
from producers.collector.events import EventFactory
from producers.collector.outbox import MemoPartitioner, Outbox, Unavailable

KEY = base64.b64encode(b"k" * 32).decode()
UA = "Mozilla/5.0 (X11; Linux x86_64) Firefox/133.0"


def _event(**fields) -> dict:
    return {
        "id": uuid.uuid4().hex,
        "type": "pageview",
        "site": "elegal",
        "ts": int(time.time() * 1000),
    } | fields


EVENTS = [
    _event(),
    _event(
        url="https://e-legal.az/a/b?utm_source=x&q=secret&keep=1#frag",
        ref="https://user:pw@google.com:8443/search?q=me",
        section="  services ",
    ),
    _event(
        type="engagement",
        engaged_ms=12_345,
        scroll_pct=70,
        sections={"faq": 900, " hero ": 0},
        url="android-app://az.elegal/x",
    ),
    _event(
        type="custom",
        name="download",
        props={"file": "a.pdf", "n": 3, "ok": True, "ratio": 0.125, "big": 1e16},
    ),
    _event(type="outbound", url="ftp://nope", ref="", consent="analytics", vid="0123456789abcdef"),
    _event(consent="analytics", vid="visitor_0001", name=" n "),
    _event(gpc=True, url="https://e-legal.az/ünicode?utm_x=ə"),
]


@pytest.mark.parametrize("event", EVENTS)
@pytest.mark.parametrize(
    "ip, ua, lang, dnt, gpc",
    [
        ("203.0.113.9", UA, "az-AZ", False, False),
        ("", None, None, False, False),
        ("2001:db8::1", UA, None, True, False),
        ("198.51.100.7", "x" * 512, "ru", False, True),
    ],
)
def test_record_is_what_the_model_makes(tmp_path, event, ip, ua, lang, dnt, gpc) -> None:
    settings = Settings(data_dir=tmp_path, ip_key=KEY, collector_query_allowlist=["keep"])
    factory = EventFactory(settings)
    headers = {k: v for k, v in {"user-agent": ua, "accept-language": lang}.items() if v}
    ctx = factory.context(headers, ip, dnt, gpc)
    ev = ClientEvent.model_validate(event)
    key, value = factory.from_client(ev, ctx)
    model_key, model_value = factory.from_client_model(ev, ctx)
    assert key == model_key
    fast, slow = orjson.loads(value), orjson.loads(model_value)
    if ip:  # a fresh nonce each time: compare the plaintext, then the rest byte for byte
        ip_key = crypto.ip_cipher_key(base64.b64decode(KEY))
        assert crypto.decrypt_ip(ip_key, fast["ip_enc"]) == ip
        value = value.replace(fast["ip_enc"].encode(), b"IP")
        model_value = model_value.replace(slow["ip_enc"].encode(), b"IP")
    assert value == model_value


def test_overlong_scrubbed_url_takes_the_validating_path(tmp_path) -> None:
    factory = EventFactory(Settings(data_dir=tmp_path, ip_key=KEY))
    ctx = factory.context({}, "203.0.113.9", False, False)
    long = "https://e-legal.az/?utm_a=" + "ə" * 1000  # grows when percent-encoded
    ev = ClientEvent.model_validate(_event(url=long))
    with pytest.raises(ValueError):
        factory.from_client(ev, ctx)


class _Cluster:
    def __init__(self, n: int) -> None:
        self.parts = set(range(n))

    def topics(self) -> set[str]:
        return {"t"}

    def partitions_for_topic(self, topic: str) -> set[int]:
        return self.parts

    def available_partitions_for_topic(self, topic: str) -> set[int]:
        return self.parts


@pytest.mark.parametrize("n", [1, 2, 3, 12])
def test_memo_partitioner_picks_the_default_partition(n) -> None:
    memo, default, cluster = MemoPartitioner(size=64), DefaultPartitioner(), _Cluster(n)
    keys = [os.urandom(16).hex().encode() for _ in range(300)]
    for key in keys + keys:  # the second round is served from the memo
        assert memo.partition("t", key, key, b"v", b"v", cluster) == default.partition(
            "t", key, key, b"v", b"v", cluster
        )
    assert memo.partition("t", None, None, b"v", b"v", cluster) in cluster.parts


def test_bare_answers_match_json_response() -> None:
    for status, content, headers in [
        (202, {"accepted": 1}, None),
        (202, {"accepted": 0}, {"Access-Control-Allow-Origin": "o", "Vary": "Origin"}),
        (400, {"error": "bad ə", "reason": "invalid", "field": "1.ts"}, None),
        (503, {"error": "try again", "reason": "unavailable"}, {"Retry-After": "2"}),
    ]:
        response = JSONResponse(content, status_code=status, headers=headers)
        assert _json(status, content, headers) == (status, response.raw_headers, response.body)


class FakeProducer:
    """Acks (or fails) records from another thread, like kafka-python's I/O thread."""

    def __init__(self, fail_on: bytes | None = None, hold: threading.Event | None = None) -> None:
        self.sent: list[bytes] = []  # every event, as compact JSON
        self.messages: list[tuple[int, bytes | None, bytes]] = []  # (partition, key, value)
        self.fail_on = fail_on
        self.hold = hold
        self.threads: set[str] = set()

    def partitions_for(self, topic: str) -> set[int]:
        return {0, 1, 2}

    def send(self, topic: str, key: bytes | None, value: bytes, partition: int) -> Future:
        self.threads.add(threading.current_thread().name)
        self.messages.append((partition, key, value))
        self.sent += [orjson.dumps(_as_dict(event)) for event in events_of(value)]
        fut = Future()

        def complete() -> None:
            if self.hold:
                self.hold.wait()
            if self.fail_on is not None and self.fail_on in value:
                fut.failure(RuntimeError("broker said no"))
            else:
                fut.success(None)

        threading.Thread(target=complete, daemon=True).start()
        return fut

    def flush(self, timeout: float) -> None:
        pass

    def close(self, timeout: float) -> None:
        pass


def _value(**fields) -> bytes:
    return orjson.dumps(fields)


async def test_outbox_answers_each_request_after_all_its_acks() -> None:
    producer = FakeProducer(fail_on=b'"bad"')
    box = Outbox("-", "t", max_pending=1000, ack_timeout=5, producer_factory=lambda: producer)
    try:
        keys = [os.urandom(8).hex().encode() for _ in range(7)]
        ok = [[(keys[i % 7], _value(i=i, j=j)) for j in range(i % 3 + 1)] for i in range(40)]
        assert await asyncio.gather(*(box.produce(r) for r in ok)) == [None] * 40
        with pytest.raises(Unavailable):  # a record the broker refuses: the request gets 503
            await box.produce([(keys[0], _value(i="fine")), (keys[0], _value(i="bad"))])
        assert sorted(producer.sent) == sorted(
            [v for rs in ok for _, v in rs] + [_value(i="fine"), _value(i="bad")]
        )
        assert producer.threads == {"mayak-outbox"}  # never the event loop
        assert box.pending == 0
    finally:
        box.close()


async def test_outbox_frames_concurrent_requests_per_partition_in_order() -> None:
    producer = FakeProducer()
    box = Outbox("-", "t", max_pending=10_000, ack_timeout=5, producer_factory=lambda: producer)
    default, cluster = DefaultPartitioner(), _Cluster(3)
    try:
        keys = [os.urandom(8).hex().encode() for _ in range(20)]
        requests = [[(keys[i % 20], _value(i=i, j=j)) for j in range(3)] for i in range(300)]
        assert await asyncio.gather(*(box.produce(r) for r in requests)) == [None] * 300
        frames = [m for m in producer.messages if m[2][:1] == b"["]
        assert frames, "concurrent requests were not framed"
        assert len(producer.messages) < 300  # fewer messages than requests
        seen: dict[bytes, list[tuple[int, int]]] = {}
        for partition, key, value in producer.messages:
            events = events_of(value)
            if key is not None:  # a one-visitor message keeps the visitor's key
                assert {keys[e["i"] % 20] for e in map(_as_dict, events)} == {key}
            for event in map(_as_dict, events):
                visitor = keys[event["i"] % 20]
                # the partition kafka-python would have chosen for the visitor's key
                assert partition == default.partition("t", visitor, visitor, b"", b"", cluster)
                seen.setdefault(visitor, []).append((event["i"], event["j"]))
        for order in seen.values():  # each visitor's events in the order sent
            assert order == sorted(order)
        assert sum(len(order) for order in seen.values()) == 900
    finally:
        box.close()


def _as_dict(event) -> dict:
    return orjson.loads(event) if isinstance(event, bytes) else event


async def test_outbox_times_out_and_bounds_pending() -> None:
    hold = threading.Event()
    box = Outbox(
        "-", "t", max_pending=3, ack_timeout=0.3, producer_factory=lambda: FakeProducer(hold=hold)
    )
    try:
        waiting = asyncio.ensure_future(box.produce([(b"k", b"1"), (b"k", b"2")]))
        await asyncio.sleep(0.05)
        assert box.pending == 2
        with pytest.raises(Unavailable):  # 2 + 2 > 3
            await box.produce([(b"k", b"3"), (b"k", b"4")])
        started = time.monotonic()
        with pytest.raises(Unavailable):  # no ack within ack_timeout: 503
            await waiting
        assert time.monotonic() - started < 1.0
        assert box.pending == 0
    finally:
        hold.set()
        box.close()


async def test_outbox_without_a_broker_is_unavailable() -> None:
    def broken():
        raise ConnectionError("no broker")

    box = Outbox("-", "t", max_pending=10, ack_timeout=5, producer_factory=broken)
    try:
        with pytest.raises(Unavailable):
            await box.produce([(b"k", b"v")])
    finally:
        box.close()


def test_producer_settings_keep_the_delivery_guarantees() -> None:
    from producers.collector.outbox import producer_config

    config = producer_config()
    assert config["acks"] == "all" and config["enable_idempotence"] is True
    # compressed inside the seal instead (Kafka's gzip over ciphertext gains nothing)
    assert config["compression_type"] is None
    value = b'{"ua":"Mozilla/5.0 (X11; Linux x86_64) Chrome/131.0","url":"https://e-legal.az/"}'
    assert len(raw_seal.seal(b"k" * 32, frame([value] * 50))) < len(value) * 50 / 5


def test_overlong_scrubbed_url_is_a_400_not_a_500(tmp_path) -> None:
    from starlette.testclient import TestClient

    from producers.collector.app import create_app
    from tests.producers.test_collector import FakeOutbox

    box = FakeOutbox()
    with TestClient(create_app(Settings(data_dir=tmp_path, ip_key=KEY), outbox=box)) as client:
        r = client.post("/e", json=_event(url="https://e-legal.az/?utm_a=" + "ə" * 1000))
        assert r.status_code == 400 and r.json()["field"] == "url" and box.records == []


def test_raw_frames_round_trip_and_anything_else_is_one_event() -> None:
    values = [_value(i=1), _value(i=2)]
    assert events_of(frame(values)) == [{"i": 1}, {"i": 2}]
    assert frame(values[:1]) == values[0]  # one event: the message is the event, as before
    assert events_of(values[0]) == [values[0]]
    for odd in (b"[not json", b"[]", b"not json", b'"a string"'):
        assert events_of(odd) == [odd]  # left to the validator, which rejects it by name


def test_partition_keys_are_the_pseudonyms_keyed_hash_and_did_not_change() -> None:
    """One HMAC for both: the Kafka key is ``keyed_hash`` as bytes. Known answers from before
    they were one function: a changed key would move a visitor's events to another partition
    (out of order across an upgrade)."""
    secret = bytes(range(32))
    assert (
        crypto.partition_key(secret, "elegal", "85.132.10.20", "Mozilla/5.0")
        == b"e37f1038265bce3bc207842beb676e1d"
    )
    assert crypto.partition_key(secret, "elegal", "vid-1") == b"dc51d5231a6f3243a355f85785559683"
    assert crypto.partition_key(secret, "ab", "c") != crypto.partition_key(secret, "a", "bc")
    assert crypto.partition_key(secret, "x", "y") == keyed_hash(secret, "x", "y").encode()


def test_ip_nonces_are_never_repeated_across_pool_refills_threads_and_forks() -> None:
    from concurrent.futures import ThreadPoolExecutor

    from contract.crypto import _Nonces, decrypt_ip, encrypt_ip

    nonces = _Nonces()
    with ThreadPoolExecutor(4) as pool:  # several refills, from four threads at once
        taken = list(pool.map(lambda _: nonces.take(), range(3 * _Nonces.BATCH)))
    assert len(set(taken)) == len(taken) and {len(n) for n in taken} == {12}
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child draws its own pool instead of continuing the parent's
        os.write(write, nonces.take())
        os._exit(0)
    os.waitpid(pid, 0)
    assert os.read(read, 12) != nonces.take()
    key = os.urandom(32)
    assert decrypt_ip(key, encrypt_ip(key, "85.132.10.20")) == "85.132.10.20"


class _Transport:
    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> None:
        self.writes.append(data)

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def get_extra_info(self, name: str) -> str:
        return f"info:{name}"


async def test_one_system_write_per_response_and_close_sends_what_was_written() -> None:
    from producers.collector.server import _CoalescingTransport

    real = _Transport()
    transport = _CoalescingTransport(real, asyncio.get_running_loop())
    transport.write(b"HTTP/1.1 202 Accepted\r\n\r\n")
    transport.write(b'{"accepted":1}')
    assert real.writes == []  # not before the loop comes round
    await asyncio.sleep(0)
    assert real.writes == [b'HTTP/1.1 202 Accepted\r\n\r\n{"accepted":1}']
    transport.write(b"last words")
    transport.close()
    assert real.writes[-1] == b"last words" and real.closed
    assert transport.get_extra_info("peername") == "info:peername"  # the rest is the transport's


@contextmanager
def _serving(app: object, http: object) -> Iterator[int]:
    """``app`` served by uvicorn with the HTTP protocol ``http`` in a thread on a free port
    (yielded once it accepts connections), stopped at the end."""
    import uvicorn

    from mayak.kafka_local import free_port

    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", http=http)  # type: ignore[arg-type]
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not server.started:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        yield port
    finally:
        server.should_exit = True
        thread.join(10)


def test_collector_protocol_serves_keep_alive_and_streamed_responses() -> None:
    import socket

    from starlette.applications import Starlette
    from starlette.responses import PlainTextResponse, StreamingResponse
    from starlette.routing import Route

    async def stream():
        for part in (b"a", b"b", b"c"):
            yield part

    app = Starlette(
        routes=[
            Route("/t", lambda r: PlainTextResponse("ok")),
            Route("/s", lambda r: StreamingResponse(stream())),
        ]
    )
    with _serving(app, "producers.collector.server:CoalescingHttpToolsProtocol") as port:
        with socket.create_connection(("127.0.0.1", port)) as sock:  # one connection, 3 requests
            sock.sendall(
                b"GET /t HTTP/1.1\r\nHost: x\r\n\r\n" * 2
                + b"GET /s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
            )
            received = b""
            while chunk := sock.recv(65536):
                received += chunk
        assert received.count(b"HTTP/1.1 200 OK") == 3
        assert received.count(b"\r\n\r\nok") == 2
        assert received.endswith(b"1\r\na\r\n1\r\nb\r\n1\r\nc\r\n0\r\n\r\n")  # chunked, complete


def test_partition_keys_keep_the_gil_no_one_shot_hmac(monkeypatch) -> None:
    """The Kafka key comes from a copied HMAC state, not ``hmac.digest``: the one-shot call
    set up the key on every event and released the GIL mid-request (a tenth of the event
    loop's time under load, issue 17's collector regression). Same bytes as before."""
    import hmac

    secret = bytes(range(32))
    expected = keyed_hash(secret, "elegal", "85.132.10.20", "Mozilla/5.0").encode()

    def one_shot(*args: object) -> bytes:
        raise AssertionError("partition_key used the one-shot hmac.digest")

    monkeypatch.setattr(hmac, "digest", one_shot)
    assert crypto.partition_key(secret, "elegal", "85.132.10.20", "Mozilla/5.0") == expected
    assert crypto.partition_key(bytes(32), "a") != crypto.partition_key(secret, "a")


class _TimerCount:
    """An event loop stand-in that counts the read-deadline timers a protocol creates."""

    def __init__(self, loop: asyncio.AbstractEventLoop, counts: list[int]) -> None:
        self._loop = loop
        self._counts = counts

    def _count(self, callback: object) -> None:
        if getattr(callback, "__name__", "") in ("_check_deadline", "_read_timed_out"):
            self._counts[0] += 1

    def call_later(self, delay: float, callback, *args):
        self._count(callback)
        return self._loop.call_later(delay, callback, *args)

    def call_at(self, when: float, callback, *args):
        self._count(callback)
        return self._loop.call_at(when, callback, *args)

    def __getattr__(self, name: str) -> object:
        return getattr(self._loop, name)


def test_read_deadlines_cost_no_timer_per_request_and_still_cut_a_slow_body() -> None:
    """100 requests on one kept-alive connection create at most a couple of deadline timers
    (it was two uvloop timers created and cancelled per request, a tenth of the loop under
    load); a body deadline shorter than the pending head timer still cuts a slow body on time."""
    import socket

    from starlette.applications import Starlette
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    from producers.collector.server import CoalescingHttpToolsProtocol

    counts = [0]

    class Counting(CoalescingHttpToolsProtocol):
        head_timeout_s = 30.0
        body_timeout_s = 0.5

        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, **kwargs)
            self.loop = _TimerCount(self.loop, counts)  # type: ignore[assignment]

    async def echo(request):
        return PlainTextResponse(str(len(await request.body())))

    with _serving(Starlette(routes=[Route("/e", echo, methods=["POST"])]), Counting) as port:
        request = b"POST /e HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}"
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            for _ in range(100):
                sock.sendall(request)
                answer = b""
                while not answer.endswith(b"\r\n\r\n2"):
                    answer += sock.recv(4096)
            assert counts[0] <= 2, counts[0]
            # then a body that never completes: cut after the body deadline, not the head's 30 s
            sock.sendall(b"POST /e HTTP/1.1\r\nHost: x\r\nContent-Length: 50\r\n\r\n{")
            started = time.monotonic()
            rest = b""
            while chunk := sock.recv(4096):
                rest += chunk
            assert rest == b""  # closed without an answer: the request never completed
            assert 0.3 < time.monotonic() - started < 5


def test_connections_reset_mid_body_leave_no_timer_and_the_server_serves_on(caplog) -> None:
    """Hostile clients: 30 connections send a head and part of a body, then reset (RST, not
    FIN). Each protocol's read-deadline timer is cancelled when its connection is lost (a
    leftover timer would fire on a dead transport), nothing is logged as an error, and the next
    honest request on a fresh connection is answered."""
    import socket
    import struct

    from starlette.applications import Starlette
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    from producers.collector.server import CoalescingHttpToolsProtocol

    protocols: list[CoalescingHttpToolsProtocol] = []

    class Tracked(CoalescingHttpToolsProtocol):
        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, **kwargs)
            protocols.append(self)

    async def echo(request):
        return PlainTextResponse(str(len(await request.body())))

    with _serving(Starlette(routes=[Route("/e", echo, methods=["POST"])]), Tracked) as port:
        for i in range(30):
            sock = socket.create_connection(("127.0.0.1", port), timeout=10)
            sock.sendall(b"POST /e HTTP/1.1\r\nHost: x\r\nContent-Length: 900\r\n\r\n" + b"{" * i)
            time.sleep(0.01)  # the server has read the head: its body deadline is armed
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            sock.close()  # linger 0: a reset
        deadline = time.monotonic() + 5
        while any(p._timer is not None for p in protocols) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(protocols) == 30
        assert [p for p in protocols if p._timer is not None] == []
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(b"POST /e HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}")
            answer = b""
            while not answer.endswith(b"\r\n\r\n2"):
                answer += sock.recv(4096)
    assert [r for r in caplog.records if r.levelname in ("ERROR", "CRITICAL")] == []
