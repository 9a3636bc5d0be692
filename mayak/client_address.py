"""Who a client is: the socket peer, or the address a trusted proxy names in X-Forwarded-For or
RFC 7239 Forwarded; and the rate-limit bucket that address draws from. Shared by the collector
and the dashboards, which both sit behind the same kind of proxy and must not let a client
choose its own address (a forged left-most hop, a header of the other kind, a new IPv6 address
from its own /64)."""

from __future__ import annotations

import functools
import ipaddress
import re
from collections.abc import Iterable

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(specs: Iterable[str]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(s.strip(), strict=False) for s in specs)


class ClientAddress:
    """One service's reading of who sent a request: its trusted proxies and the one header
    they name the client in (``x-forwarded-for`` or ``forwarded``). Only that header is read:
    a proxy that writes one kind passes a client's own header of the other kind through
    untouched."""

    def __init__(self, trusted: Iterable[str], header: str) -> None:
        self.trusted = parse_networks(trusted)
        self.header = header
        self.rfc7239 = header == "forwarded"

    def of(self, peer: str | None, lines: Iterable[str]) -> str:
        """The client's address from the socket peer and every line of ``header``, in order
        (a client's own line before the proxy's must not win)."""
        return client_ip(peer, ", ".join(lines) or None, self.trusted, self.rfc7239)


def _in(ip: str, nets: tuple[Network, ...]) -> bool:
    try:
        addr = ipaddress.ip_address(ip)
    except ValueError:
        return False
    # a dual-stack listener reports an IPv4 peer as ::ffff:a.b.c.d: the same host
    addr = getattr(addr, "ipv4_mapped", None) or addr
    return any(addr in net for net in nets)


@functools.lru_cache(maxsize=65536)
def rate_bucket(ip: str) -> str:
    """Whose token bucket a client address draws from: an IPv6 client's /64 (one home line
    or one VM gets a whole /64: one address each would let it send at 2^64 times the rate),
    an IPv4 address itself."""
    try:
        addr = ipaddress.ip_address(ip)
    except ValueError:
        return ip
    if isinstance(addr, ipaddress.IPv6Address):
        if addr.ipv4_mapped is not None:  # ::ffff:a.b.c.d is the IPv4 client a.b.c.d
            return str(addr.ipv4_mapped)
        return str(ipaddress.IPv6Network((addr, 64), strict=False))
    return ip


def client_ip(
    peer: str | None,
    forwarded_for: str | None,
    trusted: tuple[Network, ...],
    rfc7239: bool = False,
) -> str:
    """The client address: the peer, unless the peer is a trusted proxy; then the right-most
    X-Forwarded-For hop that is not itself a trusted proxy (left-most hops are forgeable).
    ``forwarded_for``: every X-Forwarded-For line of the request, joined in order with ", "
    (a proxy that adds its own line after the client's must not let the client's win). A hop
    may carry a port (``203.0.113.7:41234``, ``[2001:db8::1]:443``, as some load balancers
    write it) or an IPv6 zone; both are dropped. ``rfc7239``: the lines are RFC 7239
    ``Forwarded`` elements instead, and the hops their ``for=`` values (an element without one,
    ``for=unknown`` or an obfuscated ``for=_name`` is a hop whose address nobody knows)."""
    ip = peer or ""
    if forwarded_for and _in(ip, trusted):
        hops = (
            forwarded_hops(forwarded_for)
            if rfc7239
            else [h.strip() for h in forwarded_for.split(",") if h.strip()]
        )
        for hop in reversed(hops):
            ip = _hop_address(hop)
            if not _in(ip, trusted):
                break
    return _canonical_ip(ip)


def forwarded_hops(header: str) -> list[str]:
    """The ``for=`` value of each element of a Forwarded header, in order, unquoted
    (``for="[2001:db8::1]:4711"`` gives ``[2001:db8::1]:4711``); "" for an element without one.

    Elements are split at every comma and pairs at every semicolon, quotes or not: no value a
    proxy writes (an address, a port, ``unknown``, an ``_obfuscated`` name, a host, a scheme)
    holds either, and only the right-most elements, the proxies' own, are ever read. A
    quote-aware split would let a client's text swallow them (``for="x, for=...``), and a
    regular expression for quoted strings went quadratic on a client's 16 KB of ``\\"``
    (1.6 s of the event loop for one header)."""
    hops = []
    for element in header.split(","):
        if not element.strip():
            continue
        value = ""
        for pair in element.split(";"):
            name, eq, raw = pair.partition("=")
            if eq and name.strip().lower() == "for":
                value = raw.strip()
                if len(value) >= 2 and value[0] == value[-1] == '"':
                    value = _QUOTED_PAIR.sub(r"\1", value[1:-1])
        hops.append(value)
    return hops


_QUOTED_PAIR = re.compile(r"\\(.)")  # RFC 9110 quoted-pair: a backslash escapes one character


_V4_WITH_PORT = re.compile(r"(\d{1,3}(?:\.\d{1,3}){3}):\d{1,5}")
_V6_BRACKETED = re.compile(r"\[([0-9A-Fa-f:.]+)(?:%[^\]]*)?\](?::\d{1,5})?")


def _hop_address(hop: str) -> str:
    """One X-Forwarded-For hop as a bare address: port, brackets and zone id dropped
    (anything else is returned as is, and ``_canonical_ip`` refuses what is not an address)."""
    v4 = _V4_WITH_PORT.fullmatch(hop)
    if v4:
        return v4.group(1)
    v6 = _V6_BRACKETED.fullmatch(hop)
    if v6:
        return v6.group(1)
    return hop.split("%", 1)[0] if ":" in hop else hop


@functools.lru_cache(maxsize=4096)
def _canonical_ip(ip: str) -> str:
    try:
        addr = ipaddress.ip_address(ip.split("%", 1)[0])
    except ValueError:
        return ""
    mapped = getattr(addr, "ipv4_mapped", None)  # ::ffff:1.2.3.4 is the IPv4 client 1.2.3.4
    return str(mapped or addr)
