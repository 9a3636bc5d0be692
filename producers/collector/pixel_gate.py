"""The e-mail pixel's door: what a fetch tells about its fetcher, and de-duplication.

A mail provider's image proxy or a security gateway fetches the pixels of a whole campaign
from a few addresses within seconds, so the beacon's per-IP rate limit would refuse most of
those opens (429) and lose them. The pixel answers every fetch with the GIF instead and keeps
one open per campaign, recipient and fetcher (IP + User-Agent) per ``window_s``: a client
re-loading the image is one open, while a scanner's and the reader's fetches stay two opens
(each is classified downstream, ``stream_jobs.email_opens``).

``fetch_signals`` reads what the stream jobs need to tell machines from readers: the method
(HEAD: nobody reads a HEAD), a prefetch header (``Sec-Purpose``/``Purpose``/``X-Purpose``/
``X-Moz``), and the send time the mailer may put in the pixel URL (``?s=<epoch s or ms>``).
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Mapping

from contract.schema import MAX_TS, MIN_TS
from mayak.clock import SYSTEM_CLOCK, Clock

PREFETCH_HEADERS = ("sec-purpose", "purpose", "x-purpose", "x-moz")


class PixelGate:
    """Remembers recent (campaign, recipient, fetcher) fetches in memory (bounded LRU)."""

    def __init__(
        self, window_s: float, max_keys: int = 200_000, clock: Clock = SYSTEM_CLOCK
    ) -> None:
        self.window_s = window_s
        self.max_keys = max_keys
        self.clock = clock
        self._seen: OrderedDict[bytes, float] = OrderedDict()

    @staticmethod
    def _key(campaign: str, recipient: str, ip: str, ua: str | None) -> bytes:
        # a digest, so the memory holds no IP or token in clear
        return hashlib.blake2b(
            "\x1f".join((campaign, recipient, ip, ua or "")).encode(), digest_size=16
        ).digest()

    def first(self, campaign: str, recipient: str, ip: str, ua: str | None) -> bool:
        """True when this fetch is an open to record, False for a repeat within the window."""
        if self.window_s <= 0:
            return True
        key = self._key(campaign, recipient, ip, ua)
        now = self.clock.monotonic()
        last = self._seen.get(key)
        if last is not None and now - last < self.window_s:
            return False
        self._seen[key] = now
        self._seen.move_to_end(key)
        while len(self._seen) > self.max_keys:
            self._seen.popitem(last=False)
        return True

    def forget(self, campaign: str, recipient: str, ip: str, ua: str | None) -> None:
        """Undo ``first`` for an open that could not be recorded (the broker refused it)."""
        self._seen.pop(self._key(campaign, recipient, ip, ua), None)


def fetch_signals(method: str, headers: Mapping[str, str], query: Mapping[str, str]) -> dict:
    """``method`` (HEAD only), ``purpose`` ("prefetch") and ``sent_at`` (epoch ms) of a fetch;
    absent keys mean "nothing seen". A malformed ``s`` is ignored (the open still counts)."""
    out: dict = {}
    if method == "HEAD":
        out["method"] = "HEAD"
    if any("prefetch" in (headers.get(h) or "").lower() for h in PREFETCH_HEADERS):
        out["purpose"] = "prefetch"
    sent = query.get("s")
    # ASCII digits only: str.isdigit() also takes '²' (int() fails on it) and other scripts'
    if sent and sent.isascii() and sent.isdigit() and len(sent) <= 13:
        ms = int(sent) * (1000 if len(sent) <= 10 else 1)
        if MIN_TS <= ms <= MAX_TS:
            out["sent_at"] = ms
    return out
