"""The Faust agents without a broker (``agent.test_context()``), sends captured."""

from __future__ import annotations

from pathlib import Path
from unittest.mock import MagicMock, patch

import faust.topics
import orjson
import pytest

from mayak.settings import Settings
from stream_jobs.app import agents_of, create_app
from stream_jobs.dead_letters import DeadLetter
from tests.stream_jobs.samples import raw_event


@pytest.fixture
def sent():
    captured: list[tuple[str, dict]] = []

    async def fake_send(self, *args, **kwargs):
        captured.append((self.get_topic_name(), orjson.loads(kwargs["value"])))

    # table changelog writes go through send_soon; the broker is not there
    with (
        patch.object(faust.topics.Topic, "send", fake_send),
        patch.object(faust.topics.Topic, "send_soon", lambda *a, **k: MagicMock()),
    ):
        yield captured


@pytest.fixture
def app(tmp_path: Path, keys, clock, geo_dbs):
    settings = Settings(
        data_dir=tmp_path,
        worker_id="test-worker",
        geoip_city=str(geo_dbs["city"]),
        kafka_bootstrap="127.0.0.1:1",
    )
    app = create_app(settings, None, clock=clock, keys=keys)
    app.finalize()
    app.test_data_dir = tmp_path
    return app


async def test_enrich_agent_routes_events_and_rejections(app, sent) -> None:
    from anonymizer.master import load_master_secret
    from contract.crypto import encrypt_ip, ip_cipher_key

    key = ip_cipher_key(load_master_secret("", app.test_data_dir))  # the worker's own key file
    agent = agents_of(app).enrich
    async with agent.test_context() as ctx:
        ok = raw_event(ip=None, ip_enc=encrypt_ip(key, "85.132.1.1"))
        event = await ctx.put(orjson.dumps(ok))
        result = ctx.results[event.message.offset]
        assert result["event_id"] == ok["id"] and result["session_id"]
        assert result["country"] == "AZ"
        bad = await ctx.put(b'{"v": 9}')
        assert isinstance(ctx.results[bad.message.offset], DeadLetter)
        assert [name for name, _ in sent] == ["mayak.failed"]  # the event waits to be framed
        assert await agents_of(app).publisher.flush() == 1  # the linger timer / a commit
    assert [name for name, _ in sent] == ["mayak.failed", "mayak.events"]
    assert sent[0][1]["reason"] == "schema"
    assert [e["event_id"] for e in sent[1][1]] == [ok["id"]]  # a JSON array of events
    assert agents_of(app).pipeline.counters == {"ok": 1, "schema": 1}


async def test_enrich_agent_reads_a_collector_frame_event_by_event(app, sent) -> None:
    from contract.raw_frames import frame

    agent = agents_of(app).enrich
    good = [raw_event(ip=None) for _ in range(3)]
    values = [orjson.dumps(good[0]), b'{"v": 9}', orjson.dumps(good[1]), orjson.dumps(good[2])]
    async with agent.test_context() as ctx:
        await ctx.put(frame(values))  # one message, four events, one of them bad
        assert await agents_of(app).publisher.flush() == 3
    assert [name for name, _ in sent] == ["mayak.failed", "mayak.events"]
    assert [e["event_id"] for e in sent[1][1]] == [e["id"] for e in good]  # in frame order
    assert agents_of(app).pipeline.counters == {"ok": 3, "schema": 1}
