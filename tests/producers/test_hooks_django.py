"""The Django middleware inside a real (minimal, in-memory) Django project."""

from __future__ import annotations

import json
import sys
import types

import pytest

django = pytest.importorskip("django")

from django.conf import settings  # noqa: E402

from producers.hooks import Tracker, configure  # noqa: E402

ROUTES = {"POST /xidmetler/{service_id}/muraciet": "service_application", "GET /boom": "boom"}


def _project() -> None:
    from django.http import JsonResponse
    from django.urls import path

    def apply(request, service_id):
        _ = request.body  # the body is read by the view, never by the hook
        request.mayak_uid = "CUST-11"
        return JsonResponse({"ok": True}, status=201)

    def boom(request):
        raise RuntimeError("boom")

    def other(request):
        return JsonResponse({})

    urls = types.ModuleType("mayak_test_django_urls")
    urls.urlpatterns = [
        path("xidmetler/<int:service_id>/muraciet", apply),
        path("boom", boom),
        path("other", other),
    ]
    sys.modules[urls.__name__] = urls
    if not settings.configured:
        settings.configure(
            DEBUG=False,
            ROOT_URLCONF=urls.__name__,
            ALLOWED_HOSTS=["testserver"],
            MIDDLEWARE=["producers.hooks.django.MayakDjangoMiddleware"],
            MAYAK_ROUTES=ROUTES,
            SECRET_KEY="test",
            INSTALLED_APPS=[],
            DATABASES={},
        )
        django.setup()


def test_django_middleware_records_service_requests() -> None:
    _project()
    from django.test import Client

    items: list[bytes] = []
    tracker = Tracker("elegal", lambda k, v: items.append(v), b"k" * 32)
    configure(tracker)
    try:
        client = Client(raise_request_exception=False)
        r = client.post(
            "/xidmetler/998877/muraciet?q=hidden",
            data=b"secret-body",
            content_type="application/octet-stream",
            HTTP_USER_AGENT="UA/1",
            HTTP_AUTHORIZATION="Bearer x",
        )
        assert r.status_code == 201
        assert client.get("/other").status_code == 200
        assert client.get("/boom").status_code == 500
        tracker.flush()
    finally:
        configure(None)
        tracker.close()
    ok, failed = (json.loads(v) for v in items)
    assert (ok["route"], ok["method"], ok["status"], ok["uid"], ok["ua"]) == (
        "/xidmetler/{service_id}/muraciet",
        "POST",
        201,
        "CUST-11",
        "UA/1",
    )
    assert ok["service_type"] == "service_application" and ok["duration_ms"] > 0
    assert (failed["route"], failed["status"]) == ("/boom", 500)
    for leak in (b"secret-body", b"hidden", b"Bearer", b"998877"):
        assert leak not in items[0]
