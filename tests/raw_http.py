"""A real uvicorn server on a thread, and raw bytes over a socket: for red-team tests of what
an HTTP parser and a server do with requests no well-behaved client library would send."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator

import uvicorn


@contextlib.contextmanager
def serving(config: uvicorn.Config) -> Iterator[None]:
    """Run ``config``'s server on a daemon thread until the block ends."""
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "the server did not start within 10 s"
        time.sleep(0.02)
    try:
        yield
    finally:
        server.should_exit = True
        thread.join(10)


def exchange(port: int, request: bytes, timeout: float = 5, half_close: bool = False) -> bytes:
    """Send ``request`` as is to 127.0.0.1:``port``; every byte answered until the server
    closes (or ``timeout``). ``half_close``: shut our side after sending, as a client that has
    nothing more to say."""
    out = b""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        with contextlib.suppress(OSError):  # it may answer and close before reading it all
            sock.sendall(request)
            if half_close:
                sock.shutdown(socket.SHUT_WR)
        with contextlib.suppress(OSError):
            while chunk := sock.recv(65536):
                out += chunk
    return out
