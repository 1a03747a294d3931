"""Every error status answers in API.md's shape: {"error": {"code", "message", "details"}}."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.django_db


def assert_error_shape(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "details"}
    assert body["error"]["code"] == code
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    return body["error"]


def test_malformed_json_is_400(admin_api):
    assert_error_shape(admin_api.post("/api/v1/keys", b'{"name": '), 400, "malformed_json")


def test_missing_key_is_401(anon_api):
    assert_error_shape(anon_api.get("/api/v1/whoami"), 401, "api_key_missing")


def test_wrong_scope_is_403(scraper_api):
    assert_error_shape(scraper_api.get("/api/v1/keys"), 403, "insufficient_scope")


def test_unknown_object_is_404(admin_api):
    assert_error_shape(admin_api.post("/api/v1/keys/999999/revoke"), 404, "not_found")


def test_unknown_path_is_404(admin_api):
    assert_error_shape(admin_api.get("/api/v1/no/such/thing"), 404, "not_found")


def test_wrong_method_is_405(admin_api):
    assert_error_shape(admin_api.delete("/api/v1/whoami"), 405, "method_not_allowed")


def test_validation_error_is_422_with_each_bad_field(admin_api):
    response = admin_api.post("/api/v1/keys", {"name": "", "scope": "root", "expires_days": 0})
    error = assert_error_shape(response, 422, "validation_error")
    paths = {field["path"] for field in error["details"]["fields"]}
    assert paths == {"name", "scope", "expires_days"}
    assert all(field["reason"] for field in error["details"]["fields"])


def test_a_body_over_the_limit_is_413_before_it_is_read(admin_api, settings):
    settings.API_MAX_BODY_BYTES = 2048
    body = b'{"name": "' + b"x" * 4096 + b'"}'
    error = assert_error_shape(admin_api.post("/api/v1/keys", body), 413, "payload_too_large")
    assert error["details"]["limit_bytes"] == 2048
    from apps.accounts.models import ApiKey

    assert not ApiKey.objects.filter(name__startswith="xxx").exists()


def test_an_unexpected_failure_is_500_in_the_error_shape(admin_api, monkeypatch):
    import apps.accounts.api as accounts_api

    def explode(**kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(accounts_api, "api_key_list", explode)
    error = assert_error_shape(admin_api.get("/api/v1/keys"), 500, "internal_error")
    assert "boom" not in error["message"]


def test_every_response_carries_a_request_id(admin_api):
    response = admin_api.get("/api/v1/whoami")
    assert len(response["X-Request-ID"]) >= 16
    echoed = admin_api.get("/api/v1/whoami", headers={"X-Request-ID": "abc-123-def-456"})
    assert echoed["X-Request-ID"] == "abc-123-def-456"
