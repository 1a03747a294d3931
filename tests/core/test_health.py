from __future__ import annotations

import pytest

pytestmark = pytest.mark.django_db


def test_healthz_answers_without_auth(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_readyz_is_200_when_postgres_and_redis_answer(client):
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json()["checks"] == {"postgres": "ok", "redis": "ok"}


def test_readyz_is_503_naming_redis_when_redis_is_unreachable(client, settings):
    closed_port = "redis://127.0.0.1:1/0"
    settings.CACHES = {
        "default": {
            **settings.CACHES["default"],
            "LOCATION": closed_port,
            "OPTIONS": {**settings.CACHES["default"]["OPTIONS"], "SOCKET_CONNECT_TIMEOUT": 0.2},
        }
    }
    response = client.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["checks"]["postgres"] == "ok"
    assert body["checks"]["redis"].startswith("error")
    assert "redis" in body["status"]


def test_metrics_count_requests_by_route_and_status(client, admin_api):
    admin_api.get("/api/v1/whoami")
    text = client.get("/metrics").content.decode()
    assert 'coreadmin_http_requests_total{method="GET",route="/api/v1/whoami",status="200"}' in text
    assert "coreadmin_http_request_duration_seconds_bucket" in text


def test_openapi_describes_the_api(client):
    spec = client.get("/api/v1/openapi.json").json()
    assert spec["info"]["title"] == "coreadmin API"
    assert "/api/v1/whoami" in spec["paths"]
