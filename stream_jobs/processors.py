"""Assembles the processing pipeline from its dependencies (shared by the worker and
``mayak enrich``).

``build_pipeline`` takes every dependency explicitly (tests pass fakes); ``pipeline_from_settings``
is the production wiring: key store, GeoIP readers and the IP key from ``Settings``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, MutableMapping
from typing import TYPE_CHECKING, Any

import orjson

from anonymizer.keystore import keystore_from_settings
from anonymizer.master import load_master_secret
from anonymizer.scrub import RouteTemplates, configure
from contract.crypto import decrypt_ip, ip_cipher_key
from mayak.clock import SYSTEM_CLOCK, Clock
from stream_jobs.channels import channel_step
from stream_jobs.email_opens import SCANNER_ASNS, OpenClassifier, email_open_step
from stream_jobs.geo import GeoLookup
from stream_jobs.pipeline import Pipeline
from stream_jobs.steps import (
    SESSION_TIMEOUT_MS,
    Keys,
    consent_step,
    geo_step,
    pseudonymize_step,
    scrub_step,
    sessionize_step,
    useragent_step,
)
from stream_jobs.useragent import UAClassifier
from stream_jobs.validate import Decrypt, Validator

if TYPE_CHECKING:
    from mayak.settings import Settings


def build_pipeline(
    *,
    keys: Keys,
    geo: GeoLookup,
    classifier: UAClassifier,
    sessions: MutableMapping[str, Any],
    decrypt_ip: Decrypt | None = None,
    routes: RouteTemplates = RouteTemplates(()),
    clock: Clock = SYSTEM_CLOCK,
    session_timeout_ms: int = SESSION_TIMEOUT_MS,
    allow_clear_ip: bool = False,
    opens: OpenClassifier | None = None,
    hosting_bots: bool = False,
) -> Pipeline:
    """validate -> consent -> useragent -> geo -> email_open -> pseudonymize -> scrub ->
    sessionize -> channel. ``opens``: the e-mail open classifier (default rules if None)."""
    steps = [
        ("consent", consent_step(keys)),
        ("useragent", useragent_step(classifier)),
        ("geo", geo_step(geo, hosting_bots)),
        ("email_open", email_open_step(opens or OpenClassifier(classifier, geo))),
        ("pseudonymize", pseudonymize_step(keys, clock, sessions, session_timeout_ms)),
        ("scrub", scrub_step(routes)),
        ("sessionize", sessionize_step(sessions, session_timeout_ms)),
        ("channel", channel_step(sessions)),
    ]
    return Pipeline(Validator(decrypt_ip, allow_clear_ip), steps, clock, key_preparer(keys))


def key_preparer(keys: Keys) -> Callable[[list[Any]], None] | None:
    """For a key store that creates keys in a shared store (the Kafka key store:
    ``create_customer_keys``): a function that creates, with one round trip, the keys of the
    customers a batch of raw events names that have none yet, before the batch runs, instead
    of one round trip per new customer in the pseudonymize step. Opted-out customers get
    none (their events leave at the consent step); an event rejected later (a bot, invalid)
    may leave a key made for nothing, which erasure destroys like any other. None for a
    store without it (the local SQLite store: a key is one local insert)."""
    create = getattr(keys, "create_customer_keys", None)
    if create is None:
        return None

    def prepare(raws: list[Any]) -> None:
        uids = {uid for raw in raws if (uid := _uid_of(raw)) and not keys.is_opted_out(uid)}
        if uids:
            create(uids)

    return prepare


def _uid_of(raw: Any) -> str | None:
    if isinstance(raw, (bytes, bytearray)):  # a message holding one event: parsed later
        if b'"uid"' not in raw:
            return None
        try:
            raw = orjson.loads(raw)
        except orjson.JSONDecodeError:
            return None
    uid = raw.get("uid") if isinstance(raw, dict) else None
    return uid if isinstance(uid, str) and uid else None


def ip_decrypter(settings: Settings) -> Decrypt:
    """Decrypts ``ip_enc`` with the key the collector encrypts with (``contract.crypto``;
    ``decrypt_ip`` builds the cipher once per key)."""
    return functools.partial(
        decrypt_ip, ip_cipher_key(load_master_secret(settings.ip_key, settings.data_dir))
    )


def pipeline_from_settings(
    settings: Settings,
    sessions: MutableMapping[str, Any],
    *,
    clock: Clock = SYSTEM_CLOCK,
    allow_clear_ip: bool = False,
    keys: Keys | None = None,
) -> Pipeline:
    """The production pipeline for one process."""
    configure(settings.customer_id_pattern)  # process-wide: every scrub_text call honours it
    geo = GeoLookup(
        settings.geoip_city, settings.geoip_isp, settings.geoip_asn, settings.geoip_anonymous
    )
    classifier = UAClassifier(settings.bot_patterns, settings.ua_cache_size)
    opens = OpenClassifier(
        classifier,
        geo,
        scanner_asns=settings.email_scanner_asns or SCANNER_ASNS,
        early_s=settings.email_early_open_s,
        burst_opens=settings.email_burst_opens,
        burst_window_s=settings.email_burst_window_s,
    )
    return build_pipeline(
        keys=keys or keystore_from_settings(settings),
        geo=geo,
        classifier=classifier,
        opens=opens,
        sessions=sessions,
        decrypt_ip=ip_decrypter(settings),
        routes=RouteTemplates.parse(settings.route_templates),
        clock=clock,
        session_timeout_ms=settings.session_timeout_minutes * 60_000,
        allow_clear_ip=allow_clear_ip,
        hosting_bots=settings.bot_hosting_networks,
    )
