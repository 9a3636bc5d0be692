"""Fixtures of the stream-jobs tests: own GeoIP fixtures (mmdb-writer), a key store, a clock."""

from __future__ import annotations

from pathlib import Path

import pytest

from anonymizer.keystore import KeyStore
from stream_jobs.geo import GeoLookup
from stream_jobs.processors import build_pipeline
from stream_jobs.useragent import UAClassifier
from tests.clock import FakeClock
from tests.stream_jobs.samples import write_asn, write_city, write_isp


@pytest.fixture(scope="session")
def geo_dbs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("geoip")
    return {
        "city": write_city(folder / "city.mmdb"),
        "isp": write_isp(folder / "isp.mmdb"),
        "asn": write_asn(folder / "asn.mmdb"),
    }


@pytest.fixture
def keys(tmp_path: Path) -> KeyStore:
    store = KeyStore(tmp_path / "keys" / "anonymizer.db")
    yield store
    store.close()


@pytest.fixture(scope="session")
def classifier() -> UAClassifier:
    return UAClassifier(bot_patterns=[r"E-?Legal-Monitor"])


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def make_pipeline(keys, geo_dbs, classifier, clock):
    def make(sessions=None, **kwargs):
        geo = GeoLookup(geo_dbs["city"], geo_dbs["isp"], geo_dbs["asn"])
        return build_pipeline(
            keys=keys,
            geo=geo,
            classifier=classifier,
            sessions={} if sessions is None else sessions,
            clock=clock,
            allow_clear_ip=True,
            **kwargs,
        )

    return make
