"""The OpenAPI description says what each endpoint answers, and asks no body of a GET."""

from __future__ import annotations

from dashboards import openapi


def test_the_export_answers_a_zip_and_takes_no_body() -> None:
    export = openapi.PATHS["/api/stats/export"]["get"]
    assert list(export["responses"]["200"]["content"]) == ["application/zip"]
    assert "requestBody" not in export


def test_no_get_asks_for_a_request_body() -> None:
    gets = [path for path, ops in openapi.PATHS.items() if "requestBody" in ops.get("get", {})]
    assert gets == []
