"""``mayak enrich`` end to end (a child process): own fixtures always, MaxMind and uap-core
reference data from ../shared/testdata when it is there (CI has it)."""

from __future__ import annotations

import ipaddress
import json
import os
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from tests.stream_jobs.samples import AZ_IP, CHROME, TR_IP, raw_event

SHARED = Path(__file__).resolve().parents[3] / "shared" / "testdata"
needs_shared = pytest.mark.skipif(
    not SHARED.is_dir(), reason=f"reference test data not found at {SHARED}"
)


def enrich(lines: list[dict | bytes], tmp_path: Path, **env: str) -> tuple[list[dict], list[dict]]:
    payload = b"".join(
        (line if isinstance(line, bytes) else orjson.dumps(line)) + b"\n" for line in lines
    )
    full_env = {
        **os.environ,
        "MAYAK_DATA_DIR": str(tmp_path / "data"),
        **{f"MAYAK_{k.upper()}": v for k, v in env.items()},
    }
    done = subprocess.run(
        [sys.executable, "-m", "mayak", "enrich"],
        input=payload,
        capture_output=True,
        env=full_env,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    out = [json.loads(x) for x in done.stdout.splitlines()]
    err = [json.loads(x) for x in done.stderr.splitlines()]  # every stderr line is JSON
    return out, err


def test_enrich_with_own_geoip_fixtures(tmp_path: Path, geo_dbs) -> None:
    lines = [
        raw_event(ip=AZ_IP),
        raw_event(ip=TR_IP),
        b'{"v": 7}',
        raw_event(ua="Googlebot/2.1 (+http://www.google.com/bot.html)"),
    ]
    out, err = enrich(
        lines,
        tmp_path,
        geoip_city=str(geo_dbs["city"]),
        geoip_isp=str(geo_dbs["isp"]),
        geoip_asn=str(geo_dbs["asn"]),
    )
    assert [(e["country"], e["isp"], e["asn"]) for e in out] == [
        ("AZ", "Delta Telecom", 29049),
        ("TR", "Turk Telekom", 9121),
    ]
    assert [(r["reason"], r["step"]) for r in err] == [("schema", "validate"), ("bot", "useragent")]
    text = json.dumps(out) + json.dumps(err)
    assert AZ_IP not in text and TR_IP not in text and CHROME not in text


def test_enrich_without_geoip_warns_once_as_json(tmp_path: Path) -> None:
    out, err = enrich([raw_event(), raw_event()], tmp_path)
    assert len(out) == 2 and out[0]["country"] == ""
    warnings = [e["warning"] for e in err if "warning" in e]
    assert len(warnings) == 2  # one for country, one for ISP/ASN; none per event


def _ip_of(network: str) -> str:
    address = ipaddress.ip_network(network, strict=False).network_address
    if address.version == 6 and int(address) < 2**32:  # ::a.b.c.d, an IPv4 address in the tree
        address = ipaddress.IPv4Address(int(address))
    return str(address)


def _source(name: str) -> list[tuple[str, dict]]:
    entries = json.loads((SHARED / "maxmind" / name).read_text())
    return [(_ip_of(net), rec) for entry in entries for net, rec in entry.items()]


def _run_ips(ips: list[str], tmp_path: Path, **env: str) -> list[dict]:
    lines = [raw_event(ip=ip, id=f"00000000-0000-4000-8000-{i:012d}") for i, ip in enumerate(ips)]
    out, err = enrich(lines, tmp_path, **env)
    assert not [e for e in err if "reason" in e]
    return out


@needs_shared
def test_maxmind_city_database_gives_the_documented_countries(tmp_path: Path) -> None:
    cases = [
        (ip, rec)
        for ip, rec in _source("GeoIP2-City-Test.source.json")
        if "country" in rec or "registered_country" in rec
    ]
    out = _run_ips(
        [ip for ip, _ in cases],
        tmp_path,
        geoip_city=str(SHARED / "maxmind" / "GeoIP2-City-Test.mmdb"),
    )
    expected = [(rec.get("country") or rec["registered_country"])["iso_code"] for _, rec in cases]
    assert len(cases) > 50
    assert [e["country"] for e in out] == expected


@needs_shared
def test_maxmind_isp_and_asn_databases_give_the_documented_isp(tmp_path: Path) -> None:
    isp_cases = _source("GeoIP2-ISP-Test.source.json")
    out = _run_ips(
        [ip for ip, _ in isp_cases],
        tmp_path,
        geoip_isp=str(SHARED / "maxmind" / "GeoIP2-ISP-Test.mmdb"),
    )
    expected = [
        (
            rec.get("isp") or rec.get("autonomous_system_organization") or "",
            rec.get("autonomous_system_number", 0),
        )
        for _, rec in isp_cases
    ]
    assert [(e["isp"], e["asn"]) for e in out] == expected

    asn_cases = _source("GeoLite2-ASN-Test.source.json")
    out = _run_ips(
        [ip for ip, _ in asn_cases],
        tmp_path,
        geoip_asn=str(SHARED / "maxmind" / "GeoLite2-ASN-Test.mmdb"),
    )
    assert [(e["isp"], e["asn"]) for e in out] == [
        (rec.get("autonomous_system_organization", ""), rec["autonomous_system_number"])
        for _, rec in asn_cases
    ]


@needs_shared
def test_browser_family_matches_uap_core_for_99_percent(tmp_path: Path) -> None:
    import yaml

    cases = yaml.load(
        (SHARED / "uap-core" / "test_ua.yaml").read_text(),
        Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader),
    )["test_cases"]
    lines = [
        raw_event(ua=c["user_agent_string"][:512], id=f"00000000-0000-4000-8000-{i:012d}")
        for i, c in enumerate(cases)
    ]
    out, err = enrich(lines, tmp_path)
    # a bot's detail is category:family (issue 13)
    bots = {
        r["event"]["id"]: r["detail"].split(":", 1)[-1] for r in err if r.get("reason") == "bot"
    }
    by_id = {e["event_id"]: e["browser"] for e in out}
    matched = 0
    for line, case in zip(lines, cases):
        # a bot's family is in its detail (what bot_hits counts), a human's is `browser`
        family = by_id.get(line["id"], bots.get(line["id"]))
        matched += family == case["family"]
    share = matched / len(cases)
    print(f"uap-core browser family match: {matched}/{len(cases)} = {share:.2%}")
    assert share >= 0.99
