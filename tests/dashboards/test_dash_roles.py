"""Roles and pages: each role sees its pages and nothing else; each page's API calls answer
401 without a token and 403 to another role; the pages' scripts call only what they declare.
The last test opens every page in real headless Chromium with its own role and another."""

from __future__ import annotations

import json
import re
import time
from importlib import resources

import pytest
from starlette.testclient import TestClient

from dashboards import pages
from dashboards.app import create_app
from dashboards.auth import ROLES, add_token, tokens_path
from mayak.settings import Settings
from tests.dashboards.test_dash_pages import Served, _wait_ready
from tests.producers.chromium import Chromium, chromium_path
from tests.warehouse.samples import insert_events, synthetic_events

pytestmark = pytest.mark.clickhouse
OWN_PAGES = {
    "product": ["/"],
    "marketing": ["/marketing"],
    "researcher": ["/research"],
    "admin": ["/", "/marketing", "/research", "/admin"],
}
SCRIPTS = {
    "/": ["product.js", "common.js"],
    "/marketing": ["marketing.js", "common.js"],
    "/research": ["research.js", "common.js"],
    "/admin": ["admin.js", "common.js"],
}
POSTS = {
    "marketing/campaigns/{campaign_id}/sends",
    "admin/research/budget",
    "admin/erase",
    "admin/export",
}


@pytest.fixture
def setup(tmp_path, wh):
    insert_events(wh, synthetic_events(200))
    settings = Settings(
        data_dir=tmp_path, dashboards_host="127.0.0.1", dashboards_unauth_burst=1000
    )  # many refused calls in a row here
    tokens = {role: add_token(tokens_path(settings), f"t.{role}", role) for role in ROLES}
    return create_app(settings, wh), tokens


def _call(api: TestClient, endpoint: str, token: str | None):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    path = "/api/" + endpoint.replace("{campaign_id}", "spring")
    if endpoint in POSTS:
        return api.post(path, headers=headers, json={})
    return api.get(
        path,
        headers=headers,
        params={"site": "s1", "step": ["page:/", "page:/faq"], "dimensions": "country"},
    )


def _calls_of(role: str) -> set[str]:
    return {c for page in OWN_PAGES[role] for c in pages.PAGE_CALLS[page]}


def test_each_role_sees_its_pages_and_nothing_else(setup) -> None:
    app, tokens = setup
    api = TestClient(app)
    for role, token in tokens.items():
        me = api.get("/api/me", headers={"Authorization": f"Bearer {token}"}).json()
        assert (me["role"], me["pages"]) == (role, OWN_PAGES[role])
    assert api.get("/api/me").status_code == 401


def test_page_calls_refuse_no_token_and_other_roles(setup) -> None:
    app, tokens = setup
    api = TestClient(app)
    for page, calls in pages.PAGE_CALLS.items():
        others = [r for r in ROLES if r not in pages.PAGE_ROLES[page]]
        for endpoint in calls:
            assert _call(api, endpoint, None).status_code == 401, endpoint
            for role in pages.PAGE_ROLES[page]:
                # the owner is let in (a 400 for the empty POST body is the body check)
                assert _call(api, endpoint, tokens[role]).status_code in (200, 400), (
                    role,
                    endpoint,
                )
            for role in others:
                status = _call(api, endpoint, tokens[role]).status_code
                # the marketing page shows the summary too: that call is marketing's own
                assert status == (200 if endpoint in _calls_of(role) else 403), (role, endpoint)
        for role in others:  # and the page as a whole is closed to every other role
            assert any(_call(api, c, tokens[role]).status_code == 403 for c in calls), (role, page)


def test_pages_scripts_call_what_they_declare() -> None:
    static = resources.files("dashboards").joinpath("static")
    for page, files in SCRIPTS.items():
        text = "".join(static.joinpath(f).read_text() for f in files)
        named = set(re.findall(r'["`]((?:stats|marketing|research|admin)/[a-z/-]+)["`$]', text))
        declared = set(pages.PAGE_CALLS[page])
        assert {n.rstrip("/") for n in named} <= declared | {"marketing/campaigns"}, page
        for endpoint in declared:
            assert endpoint.split("{")[0] in text, (page, endpoint)


#: run before any page script: records what the page's Content-Security-Policy blocked
CSP_PROBE = (
    "window.__csp = []; document.addEventListener('securitypolicyviolation',"
    " (e) => window.__csp.push(`${e.violatedDirective} ${e.blockedURI}`));"
)


@pytest.mark.browser
@pytest.mark.skipif(chromium_path() is None, reason="apt-get install chromium")
def test_pages_in_chromium_by_role(setup) -> None:
    """Every page works for its role under the dashboards' strict Content-Security-Policy
    (scripts from /static only: no inline script, no eval) with no violation reported; and
    the policy is really enforced: an inline script put into a page does not run."""
    app, tokens = setup
    server = Served(app)
    chrome = Chromium()
    chrome.send("Page.enable")
    chrome.send("Page.addScriptToEvaluateOnNewDocument", source=CSP_PROBE)
    base = f"http://127.0.0.1:{server.port}"
    try:
        chrome.navigate(f"{base}/docs")
        deadline = time.monotonic() + 20
        while (
            not chrome.eval("document.querySelectorAll('.op').length")
            and time.monotonic() < deadline
        ):
            time.sleep(0.1)
        assert chrome.eval("window.__csp") == []
        ops = chrome.eval("[...document.querySelectorAll('.op')].map(o => o.textContent)")
        assert any("GET /api/stats/funnel" in o and "roles: product, admin" in o for o in ops)
        assert any("POST /e" in o and "public" in o for o in ops)  # the collector's too
        for role, token in tokens.items():
            chrome.eval(
                f"localStorage.setItem('mayak-token', {json.dumps(token)});"
                "localStorage.setItem('mayak-site', 's1')"
            )
            for page in pages.PAGE_ROLES:
                chrome.navigate(f"{base}{page}")
                _wait_ready(chrome)
                shown = chrome.eval(
                    "document.querySelector('#message').hidden ? '' : "
                    "document.querySelector('#message').textContent"
                )
                links = chrome.eval(
                    "[...document.querySelectorAll('#nav a')].map(a => a.getAttribute('href'))"
                )
                assert links == OWN_PAGES[role], (role, page)
                if page in OWN_PAGES[role]:
                    assert shown == "", (role, page, shown)
                else:
                    assert f"The role {role} may not use this page" in shown, (role, page)
                assert chrome.eval("window.__csp") == [], (role, page)
        chrome.eval(
            "const s = document.createElement('script'); s.textContent = 'window.__ran = 1';"
            " document.body.append(s); 0"
        )
        assert chrome.eval("window.__ran === undefined") is True
        assert any(v.startswith("script-src") for v in chrome.eval("window.__csp"))
    finally:
        chrome.close()
        server.stop()


@pytest.mark.browser
@pytest.mark.skipif(chromium_path() is None, reason="apt-get install chromium")
def test_marketing_and_research_pages_work(setup) -> None:
    app, tokens = setup
    server = Served(app)
    chrome = Chromium()
    chrome.send("Page.enable")
    base = f"http://127.0.0.1:{server.port}"

    def act(selector: str) -> None:
        before = chrome.eval("document.body.dataset.ready")
        chrome.eval(f"document.querySelector({json.dumps(selector)}).scrollIntoView()")
        chrome.click(selector)
        _wait_ready(chrome, before)

    try:
        chrome.navigate(f"{base}/docs")
        chrome.eval(f"localStorage.setItem('mayak-token', {json.dumps(tokens['marketing'])})")
        chrome.navigate(f"{base}/marketing?site=s1")
        _wait_ready(chrome)
        chrome.eval(
            "document.querySelector('#campaign').value = 'spring';"
            "document.querySelector('#sent').value = '120'"
        )
        act("#send button")
        cells = chrome.eval(
            "[...document.querySelectorAll('#campaigns tbody tr')]"
            ".map(r => [...r.children].map(td => td.textContent))"
        )
        heads = chrome.eval(
            "[...document.querySelectorAll('#campaigns th')].map(t => t.textContent)"
        )
        spring = dict(zip(heads, next(c for c in cells if c[0] == "spring")))
        assert spring["sent"] == "120" and float(spring["open_rate"]) > 0
        chrome.navigate(f"{base}/marketing?site=s1&lang=az")  # in Azerbaijani
        _wait_ready(chrome)
        assert chrome.eval("document.querySelector('[data-t=campaigns]').textContent").startswith(
            "E-poçt kampaniyaları"
        )
        assert chrome.eval("document.querySelector('#nav a').textContent") == "Marketinq"
        chrome.eval(f"localStorage.setItem('mayak-token', {json.dumps(tokens['researcher'])})")
        chrome.navigate(f"{base}/research")
        _wait_ready(chrome)
        chrome.eval("document.querySelector('#site').value = 's1'")
        act("#ask button")
        assert chrome.eval("document.querySelector('#message').hidden")
        assert "epsilon" in chrome.eval("document.querySelector('#privacy').textContent")
        assert (
            chrome.eval("[...document.querySelectorAll('#answer th, #answer .empty')].length") > 0
        )
        budget = dict(
            zip(
                chrome.eval("[...document.querySelectorAll('#budget th')].map(t => t.textContent)"),
                chrome.eval("[...document.querySelectorAll('#budget td')].map(t => t.textContent)"),
            )
        )
        assert float(budget["spent_epsilon"]) == 1.0  # the question just asked
    finally:
        chrome.close()
        server.stop()
