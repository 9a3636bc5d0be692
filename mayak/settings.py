"""The one typed settings object of every Mayak deployable, read from the environment once.

Each process builds ``Settings()`` at start-up and passes it down; nothing deeper reads
``os.environ``. Every field maps to an environment variable ``MAYAK_<FIELD>``.
"""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

#: The E-LEGAL portal's customer ids; the anonymizer redacts what matches (a deployment may
#: set its own with MAYAK_CUSTOMER_ID_PATTERN).
DEFAULT_CUSTOMER_ID_PATTERN = r"ELG-CUST-[0-9A-Z]{4,16}"

#: A visitor's hits this far apart or more are two sessions (the web-analytics convention).
SESSION_TIMEOUT_MINUTES = 30
#: The zone of the reports' dates, hours and weekdays: the portal's audience is in Azerbaijan.
REPORT_TIMEZONE = "Asia/Baku"


def _default_cache_dir() -> Path:
    # Kafka jars are shared by every checkout and data dir, so they live outside the repo.
    return Path.home() / ".cache" / "mayak"


class Settings(BaseSettings):
    """Configuration of the collector, the stream worker, the dashboards and the CLI."""

    model_config = SettingsConfigDict(env_prefix="MAYAK_", extra="ignore", frozen=True)

    # --- storage ---------------------------------------------------------------------
    data_dir: Path = Field(Path(".mayak"), description="Broker logs, chDB files, key store")
    cache_dir: Path = Field(default_factory=_default_cache_dir, description="Kafka jar cache")

    # --- Kafka -------------------------------------------------------------------------
    kafka_bootstrap: str = "127.0.0.1:9092"
    kafka_controller_port: int = 9093  # local broker only (KRaft controller listener)
    kafka_version: str = "3.9.2"
    kafka_heap_mb: int = 256  # the local broker's JVM heap (a small site; raise for more)
    kafka_partitions: int = 2
    topic_raw: str = "mayak.raw"
    topic_events: str = "mayak.events"
    topic_failed: str = "mayak.failed"

    # --- ClickHouse --------------------------------------------------------------------
    # chdb:///abs/path = embedded engine (one process per path); http(s)://... = server.
    clickhouse_dsn: str = ""
    clickhouse_database: str = "mayak"
    # embedded chDB only: the engine's memory bound, its caches 1/16 of it (warehouse/client.py)
    clickhouse_embedded_memory_mb: int = Field(1024, ge=64)

    # --- HTTP services ------------------------------------------------------------------
    collector_host: str = "127.0.0.1"
    collector_port: int = 8400
    dashboards_host: str = "127.0.0.1"
    dashboards_port: int = 8401

    # --- producers: collector, pixel, hooks (producers/) ----------------------------------
    # master secret (base64 of 32 bytes) for IP encryption and Kafka keys; empty = a key file
    # created once under data_dir/keys/producers.key (see contract/crypto.py)
    ip_key: str = ""
    # site id -> allowed Origin globs (fnmatch, "*" = any); an unknown site is refused (403)
    collector_sites: dict[str, list[str]] = {
        "elegal": [
            "https://e-legal.az",
            "https://*.e-legal.az",
            "http://localhost:*",
            "http://127.0.0.1:*",
        ],
        "demo": ["*"],
    }
    # sites whose DNT / Sec-GPC visits are not counted at all (the others: counted anonymously)
    collector_dnt_drop_sites: list[str] = []
    # peers (IPs or CIDRs) whose X-Forwarded-For header is believed
    collector_trusted_proxies: list[str] = []
    # the header those proxies name the client in: x-forwarded-for, or forwarded (RFC 7239,
    # its for= values); only that one is read
    collector_proxy_header: Literal["x-forwarded-for", "forwarded"] = "x-forwarded-for"
    # query parameters kept in url/ref besides utm_* (all others are dropped at the door)
    collector_query_allowlist: list[str] = []
    # per-client token bucket: sustained requests per second and burst
    collector_rate_per_s: float = 20.0
    collector_rate_burst: int = 60
    # events handed to Kafka but not yet acknowledged; beyond this the collector answers 503
    collector_max_pending: int = 20_000
    # how long a request waits for the broker's ack before answering 503 (the beacon retries)
    collector_ack_timeout_s: float = 30.0
    # the request line + headers of one request: at most this many bytes and header fields
    # (else 431), and received within this many seconds (else 408); then the body within
    # collector_body_timeout_s. Idle kept-alive connections close after collector_keep_alive_s
    collector_max_header_bytes: int = Field(16 * 1024, ge=1024)
    collector_max_headers: int = Field(64, ge=8)
    collector_header_timeout_s: float = Field(10.0, gt=0)
    collector_body_timeout_s: float = Field(10.0, gt=0)
    collector_keep_alive_s: float = Field(5.0, gt=0)
    # events waiting this long with no Kafka ack at all: Kafka counts as unavailable, POST /e
    # answers 503 at once (but a trial request every 0.5 s) and /readyz 503 until an ack
    collector_stall_s: float = Field(3.0, gt=0)
    # site of email_open events (the pixel URL carries only campaign and recipient token)
    collector_pixel_site: str = "elegal"
    # e-mail pixel: repeats of one campaign + recipient + fetcher within this many seconds are
    # one open (the pixel is not rate-limited per IP: mail proxies share addresses); 0 = off
    collector_pixel_dedupe_s: float = 30.0
    # site of events emitted by the server hooks (track(), middlewares)
    hooks_site: str = "elegal"

    # --- stream worker -----------------------------------------------------------------
    worker_id: str = "mayak-worker"
    worker_web_port: int = 6066
    sink_batch_size: int = 5000
    sink_flush_seconds: float = Field(0.5, gt=0)
    # under load the sink inserts less often (stream_jobs/flush_pace.py): once rows arrive at
    # this rate or more, every sink_busy_flush_seconds; equal to sink_flush_seconds: never
    sink_busy_flush_seconds: float = Field(2.0, gt=0)
    sink_busy_events_per_second: float = Field(1500.0, gt=0)
    # enrich agent: enriched events wait at most this long to be sent as one message
    enrich_linger_seconds: float = Field(0.05, ge=0.005, le=5.0)
    # raw messages the enrich agent runs through the pipeline in one go (stream_jobs/intake.py)
    enrich_batch_size: int = Field(100, ge=1, le=10_000)
    # enriched events per mayak.events message (a JSON array; stream_jobs/batching.py)
    events_per_message: int = 500
    # Faust consumer group: a killed worker's partitions move after this many seconds
    # (Kafka's group.min.session.timeout.ms is 6 s by default)
    worker_session_timeout_s: float = 10.0
    worker_heartbeat_s: float = 1.0

    # --- stream jobs + anonymizer (stream_jobs/, anonymizer/; issue 4) --------------------
    # GeoIP2/GeoLite2 databases (.mmdb); empty or missing = those fields stay empty
    geoip_city: str = ""  # City or Country database -> country
    geoip_isp: str = ""  # ISP database -> isp, asn
    geoip_asn: str = ""  # ASN database -> asn, isp fallback (AS organisation)
    # GeoIP2 Anonymous-IP database: a pixel fetch from a hosting network is a scanner
    geoip_anonymous: str = ""
    # salts, per-customer keys, opt-outs (SQLite, mode 0600); empty = data_dir/keys/anonymizer.db
    keystore_path: str = ""
    # where those secrets live: "local" = the SQLite file above (one host); "kafka" = one store
    # for every worker on every host, in the compacted topic topic_keys, values encrypted under
    # the master secret (anonymizer/keystore_kafka.py; every host needs the same MAYAK_IP_KEY)
    key_store: Literal["local", "kafka"] = "local"
    topic_keys: str = "mayak.keys"
    # kafka key store: a segment of topic_keys is closed (and so compacted) this long after its
    # first record; each store appends a heartbeat this often so that it is. Destroyed secrets
    # leave the broker's files within about segment + heartbeat + the broker's
    # log.cleaner.backoff.ms + file.delete.delay (README "Shared key store")
    key_store_segment_s: float = Field(600.0, ge=1.0)
    key_store_heartbeat_s: float = Field(30.0, gt=0)
    # kafka key store: how long a write (a new key) and its read-back may take; past that the
    # worker stops without committing the events that needed it (started again, it redoes them)
    key_store_timeout_s: float = Field(30.0, gt=0)
    # extra regexes matched against the user agent to count a hit as a bot (headless built in)
    bot_patterns: list[str] = []
    # a service request (server hook: no JS evidence) from a hosting network (needs
    # geoip_anonymous) is counted as a bot, category "hosting"
    bot_hosting_networks: bool = True
    # route templates applied to paths, ":name" = one segment, e.g. "/lawyers/:slug"
    route_templates: list[str] = []
    # the portal's customer ids (regex, case-insensitive): redacted as [customer] wherever
    # they appear in free text (paths, sections, utm, campaign, props)
    customer_id_pattern: str = DEFAULT_CUSTOMER_ID_PATTERN
    session_timeout_minutes: int = SESSION_TIMEOUT_MINUTES
    ua_cache_size: int = 10_000
    # e-mail opens (stream_jobs/email_opens.py): security gateways' ASNs (empty = built-in
    # list); an open this soon after the send time in the pixel URL is a scanner; the Nth
    # open of one campaign from one IP within the window (and later ones) is a scanner burst
    email_scanner_asns: list[int] = []
    email_early_open_s: float = 10.0
    email_burst_opens: int = Field(10, ge=2)
    email_burst_window_s: float = 60.0

    # --- warehouse + dashboards (warehouse/, dashboards/; issue 5) ------------------------
    # ClickHouse cluster name (remote_servers) for ON CLUSTER / Replicated / Distributed DDL;
    # empty = one node (embedded chDB or a single server)
    clickhouse_cluster: str = ""
    # API tokens (TOML, `mayak token add`); empty = data_dir/api_tokens.toml. Without a
    # readable file every API call but the CLI's answers 503 (fails closed, no anonymous access)
    api_tokens_file: str = ""
    # calls without a valid token, per client IP: sustained per second and burst (then 429)
    dashboards_unauth_rate_per_s: float = Field(0.5, gt=0)
    dashboards_unauth_burst: int = Field(10, ge=1)
    # peers (IPs or CIDRs) whose proxy header names the dashboards' client (for that rate
    # limit), and which header: as the collector's two settings. Empty: the socket peer, and no
    # header is believed (uvicorn's own default trusted X-Forwarded-For from 127.0.0.1)
    dashboards_trusted_proxies: list[str] = []
    dashboards_proxy_header: Literal["x-forwarded-for", "forwarded"] = "x-forwarded-for"
    # every dashboard/research query: ClickHouse time, memory and GROUP BY size limits
    # (beyond them the caller gets 422 "query too heavy"); one query runs at a time in
    # embedded mode, so the time limit also bounds how long a query waits behind another
    query_max_seconds: float = Field(5.0, gt=0)
    query_max_memory_mb: int = Field(1024, ge=1)
    query_max_groups: int = Field(1_000_000, ge=1)
    # research API (user-level differential privacy, dashboards/dp.py): epsilon of one
    # question unless it asks for another (`epsilon=`), delta of one question (the chance a
    # cell that few visitors could create is published), cells one visitor may add to
    research_epsilon: float = Field(1.0, gt=0, le=10)
    research_delta: float = Field(1e-7, gt=0, lt=1e-3)
    research_max_cells: int = Field(2, ge=1, le=50)
    # budget per researcher and calendar month unless an admin sets another
    # (`mayak research budget set`)
    research_budget_epsilon: float = Field(5.0, ge=0)
    research_budget_delta: float = Field(1e-5, ge=0, lt=1)
    # dates and hour-of-day/weekday of reports are in this zone
    report_timezone: str = REPORT_TIMEZONE

    @field_validator("collector_trusted_proxies", "dashboards_trusted_proxies")
    @classmethod
    def _networks(cls, specs: list[str]) -> list[str]:
        for spec in specs:
            try:
                ipaddress.ip_network(spec.strip(), strict=False)
            except ValueError:
                raise ValueError(
                    f"{spec!r} is not an IP address or network (e.g. 10.0.0.7, 10.0.0.0/8)"
                ) from None
        return specs

    @field_validator("customer_id_pattern")
    @classmethod
    def _valid_regex(cls, pattern: str) -> str:
        try:
            compiled = re.compile(pattern)
        except re.error as exc:
            raise ValueError(f"not a regular expression: {exc}") from None
        if not pattern or compiled.match(""):
            raise ValueError("must not match the empty string")
        return pattern

    @model_validator(mode="after")
    def _derive_defaults(self) -> Settings:
        if self.sink_busy_flush_seconds < self.sink_flush_seconds:
            raise ValueError(
                f"sink_busy_flush_seconds ({self.sink_busy_flush_seconds}) must be at least "
                f"sink_flush_seconds ({self.sink_flush_seconds}): set both, or raise the first"
            )
        if not self.clickhouse_dsn:
            path = (self.data_dir / "clickhouse").resolve()
            object.__setattr__(self, "clickhouse_dsn", f"chdb://{path}")
        return self

    @property
    def embedded_clickhouse(self) -> bool:
        """True when ClickHouse runs in-process (chDB) and so only one process may open it."""
        return self.clickhouse_dsn.startswith("chdb://")

    @property
    def collector_url(self) -> str:
        return f"http://{self.collector_host}:{self.collector_port}"

    @property
    def dashboards_url(self) -> str:
        return f"http://{self.dashboards_host}:{self.dashboards_port}"
