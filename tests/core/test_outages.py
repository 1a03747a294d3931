"""A database or Redis outage anywhere in a request is a 503 with Retry-After in the
error shape (clients retry it), never a 500 that reads as a bug."""

from __future__ import annotations

import psycopg
import pytest
from django.db import connection

from apps.fleet.selectors import clear_service_config_cache
from apps.tracing import sampling
from tests.core.test_errors import assert_error_shape
from tests.datasets.test_faults import dsn


def drop_our_connection() -> None:
    """A real fault: the server terminates this thread's database connection."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        pid = cursor.fetchone()[0]
    with psycopg.connect(dsn(), autocommit=True) as other:
        other.execute("SELECT pg_terminate_backend(%s)", [pid])


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("self_tracing", [False, True], ids=["plain", "self-traced"])
def test_a_lost_database_connection_is_503_and_the_next_request_reconnects(
    admin_api, settings, self_tracing
):
    # Self-traced: the tracing middleware's sample-rate lookup is the first query to
    # fail, outside the API's exception handlers.
    settings.TRACING_SELF_ENABLED = self_tracing
    assert admin_api.get("/api/v1/keys").status_code == 200
    sampling._forget_rates()
    clear_service_config_cache()
    drop_our_connection()
    response = admin_api.get("/api/v1/keys")
    error = assert_error_shape(response, 503, "database_unavailable")
    assert response["Retry-After"] == "1"
    assert "nothing of this request was acknowledged" in error["message"]
    assert admin_api.get("/api/v1/keys").status_code == 200


ENDPOINTS = [
    (
        "POST",
        "/api/v1/cache-stats",
        {
            "cache": "l1",
            "service": "reddit",
            "hits": 3,
            "misses": 1,
            "evictions": 0,
            "size": 10,
            "interval_s": 60,
        },
    ),
    (
        "POST",
        "/api/v1/fleet/heartbeat",
        {"instance": "i-1", "service": "reddit", "version": "1", "memory_mb": 10},
    ),
    ("POST", "/api/v1/proxies/lease", {"service": "reddit", "target": "example.com"}),
    ("POST", "/api/v1/logs", {"records": [{"service": "reddit", "message": "x"}]}),
    ("GET", "/api/v1/caches", None),
    ("GET", "/api/v1/fleet/instances", None),
    ("GET", "/api/v1/tracing/stages", None),
]


@pytest.mark.django_db
@pytest.mark.parametrize(("method", "path", "body"), ENDPOINTS, ids=[p for _, p, _ in ENDPOINTS])
def test_with_redis_down_no_endpoint_answers_500(admin_api, redis_down, clock, method, path, body):
    response = admin_api.post(path, body) if method == "POST" else admin_api.get(path)
    assert response.status_code in (200, 202, 503), response.content
    if response.status_code == 503:
        assert "Retry-After" in response


@pytest.mark.django_db
def test_a_redis_error_an_endpoint_does_not_handle_is_503_not_500(admin_api, monkeypatch):
    import redis

    import apps.accounts.api as accounts_api

    def unreachable(**kwargs):
        raise redis.exceptions.ConnectionError("Error 111 connecting to 127.0.0.1:6379.")

    monkeypatch.setattr(accounts_api, "api_key_list", unreachable)
    response = admin_api.get("/api/v1/keys")
    assert_error_shape(response, 503, "redis_unavailable")
    assert response["Retry-After"] == "1"
