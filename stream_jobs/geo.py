"""GeoIP lookups: country (City or Country database) and ISP / ASN (ISP or ASN database).

A database that is not configured, missing or unreadable leaves its fields empty and logs
one warning at start-up; a lookup never raises. The IP is only an argument here: it is
neither stored nor logged.

Lookups read the records as plain dicts from the readers' maxminddb (C) reader: geoip2's
model objects (and an exception per address not in the database) cost more than the lookup.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import geoip2.database

log = logging.getLogger("mayak.stream_jobs.geo")


@dataclass(frozen=True)
class GeoInfo:
    country: str = ""
    isp: str = ""
    asn: int = 0


EMPTY_GEO = GeoInfo()


def _open(path: str | Path | None, what: str) -> geoip2.database.Reader | None:
    if not path:
        log.warning("no %s database configured: its fields stay empty", what)
        return None
    try:
        return geoip2.database.Reader(str(path))
    except (OSError, ValueError) as exc:
        log.warning(
            "%s database %s cannot be opened (%s): its fields stay empty",
            what,
            path,
            type(exc).__name__,
        )
        return None


@dataclass(frozen=True)
class NetworkKind:
    """The Anonymous-IP database's verdict on an address (all False when unknown)."""

    hosting: bool = False  # a hosting / data-centre network
    anonymous: bool = False  # VPN, public proxy, Tor exit or residential proxy


PLAIN_NETWORK = NetworkKind()


class GeoLookup:
    """Holds the readers; ``lookup(ip)`` returns country, ISP (else ASN org) and ASN;
    ``network_kind(ip)`` the Anonymous-IP verdict (hosting / anonymous) when configured."""

    def __init__(
        self,
        city: str | Path | None = None,
        isp: str | Path | None = None,
        asn: str | Path | None = None,
        anonymous: str | Path | None = None,
    ) -> None:
        self._country = _open(city, "City/Country")
        self._isp = _open(isp, "ISP") if isp else None
        self._asn = _open(asn, "ASN") if asn else None
        self._anon = _open(anonymous, "Anonymous-IP") if anonymous else None
        if not (isp or asn):
            log.warning("no ISP or ASN database configured: isp and asn stay empty")

    def network_kind(self, ip: str | None) -> NetworkKind:
        rec = _record(self._anon, ip) if ip else None
        if not rec:
            return PLAIN_NETWORK
        return NetworkKind(
            hosting=bool(rec.get("is_hosting_provider")),
            anonymous=bool(
                rec.get("is_anonymous_vpn")
                or rec.get("is_public_proxy")
                or rec.get("is_tor_exit_node")
                or rec.get("is_residential_proxy")
            ),
        )

    def close(self) -> None:
        for reader in (self._country, self._isp, self._asn, self._anon):
            if reader is not None:
                reader.close()

    def lookup(self, ip: str | None) -> GeoInfo:
        if not ip:
            return EMPTY_GEO
        return GeoInfo(self._country_code(ip), *self._network(ip))

    def _country_code(self, ip: str) -> str:
        record = _record(self._country, ip)
        if not record:
            return ""
        return (
            (record.get("country") or {}).get("iso_code")
            or (record.get("registered_country") or {}).get("iso_code")
            or ""
        )

    def _network(self, ip: str) -> tuple[str, int]:
        isp_name, org, asn = "", "", 0
        rec = _record(self._isp, ip)
        if rec:
            isp_name = rec.get("isp") or ""
            org = rec.get("autonomous_system_organization") or ""
            asn = rec.get("autonomous_system_number") or 0
        if self._asn is not None and not (isp_name and asn):
            rec = _record(self._asn, ip)
            if rec:
                org = org or rec.get("autonomous_system_organization") or ""
                asn = asn or rec.get("autonomous_system_number") or 0
        return (isp_name or org)[:128], asn


def _record(reader: geoip2.database.Reader | None, ip: str) -> dict | None:
    if reader is None:
        return None
    try:
        record = reader._db_reader.get(ip)
    except ValueError:  # not an IP address
        return None
    return record if isinstance(record, dict) else None
