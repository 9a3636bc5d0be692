"""Realistic raw records for the benchmarks: real user agents repeating as in real traffic,
public-format IPs, the portal's pages; built by the collector's own EventFactory so the
pipeline sees exactly what the collector would produce."""

from __future__ import annotations

import random
import time
import uuid
from pathlib import Path

import orjson

from mayak.demo import PAGES, REFERRERS, USER_AGENTS
from mayak.settings import Settings

SITE = "bench"
# about 27% of user agents in a published sample of real traffic were unique
UNIQUE_UA_SHARE = 0.27
# the recorded traffic arrived at this rate: browsers stamp their own ``ts``, so events are
# spread over time as on a live site (all in one millisecond, every sink duplicate check
# would have to look at every row landed before)
RECORDED_EVENTS_PER_S = 1000


def user_agent(rng: random.Random, n: int) -> str:
    if rng.random() < UNIQUE_UA_SHARE:
        major, build = rng.randint(90, 131), rng.randint(1000, 6999)
        return (
            f"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
            f"Chrome/{major}.0.{build}.{n % 200} Safari/537.36"
        )
    return rng.choice(USER_AGENTS)


def client_event(rng: random.Random, now_ms: int) -> dict:
    path, section = rng.choice(PAGES)
    return {
        "v": 1,
        "id": str(uuid.uuid4()),
        "type": "pageview",
        "site": SITE,
        "ts": now_ms,
        "url": f"https://e-legal.az{path}?utm_source=bench",
        "ref": rng.choice(REFERRERS),
        "section": section,
    }


def raw_records(n: int, data_dir: Path, seed: int = 1) -> list[tuple[bytes, bytes]]:
    """``n`` (key, value) records as the collector writes them to ``mayak.raw``."""
    from contract.schema import ClientEvent
    from producers.collector.events import EventFactory

    factory = EventFactory(Settings(data_dir=data_dir))
    rng = random.Random(seed)
    visitors = [
        (
            f"{rng.choice([5, 31, 37, 46, 62, 85, 94, 185])}.{rng.randint(0, 255)}."
            f"{rng.randint(0, 255)}.{rng.randint(1, 254)}",
            user_agent(rng, i),
        )
        for i in range(max(1, n // 4))
    ]
    start = int(time.time() * 1000) - n * 1000 // RECORDED_EVENTS_PER_S
    records = []
    for i in range(n):
        ip, ua = rng.choice(visitors)
        ctx = factory.context({"user-agent": ua}, ip, False, False)
        ts = start + i * 1000 // RECORDED_EVENTS_PER_S
        event = ClientEvent.model_validate(client_event(rng, ts))
        records.append(factory.from_client(event, ctx))
    return records


def decoded(records: list[tuple[bytes, bytes]]) -> list[dict]:
    return [orjson.loads(value) for _, value in records]
