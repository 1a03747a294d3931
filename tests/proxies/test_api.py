"""Admin endpoints for proxies (API.md): create, list, detail, patch; never a password."""

from __future__ import annotations

from django.db import connection as db_connection
from django.test.utils import CaptureQueriesContext

from apps.proxies.models import Proxy

from .conftest import CANARY

URL = f"http://alice:{CANARY}@proxy.example.net:3128"


def test_creating_a_proxy_returns_it_without_its_password(admin_api, clock):
    response = admin_api.post(
        "/api/v1/proxies", {"url": URL, "service": "reddit", "country": "us", "tags": ["dc"]}
    )
    assert response.status_code == 201
    body = response.json()
    assert CANARY not in response.content.decode()
    assert body["host"] == "proxy.example.net" and body["port"] == 3128
    assert body["username"] == "alice" and body["country"] == "US" and body["status"] == "active"
    assert set(body) >= {
        "id",
        "scheme",
        "host",
        "port",
        "username",
        "service",
        "country",
        "status",
        "health_score",
        "success_rate",
        "latency_ms",
        "last_checked_at",
        "banned_targets",
    }
    stored = Proxy.objects.get(pk=body["id"])
    assert CANARY not in stored.password_encrypted
    assert stored.password() == CANARY


def test_a_bad_url_is_422_and_a_duplicate_409(admin_api, clock):
    bad = admin_api.post("/api/v1/proxies", {"url": "ftp://x:1", "service": "reddit"})
    assert bad.status_code == 422
    assert bad.json()["error"]["details"]["fields"][0]["path"] == "url"
    assert admin_api.post("/api/v1/proxies", {"url": URL, "service": "reddit"}).status_code == 201
    dup = admin_api.post("/api/v1/proxies", {"url": URL, "service": "reddit"})
    assert dup.status_code == 409 and dup.json()["error"]["code"] == "proxy_exists"
    assert Proxy.objects.count() == 1


def test_scraper_keys_cannot_manage_proxies(scraper_api, clock):
    assert scraper_api.post("/api/v1/proxies", {"url": URL, "service": "r"}).status_code == 403
    assert scraper_api.get("/api/v1/proxies").status_code == 403


def test_the_list_filters_by_service_and_status_in_constant_queries(admin_api, make_proxy, clock):
    for _ in range(3):
        make_proxy(service="reddit", password=CANARY)
    make_proxy(service="twitter")
    frozen = make_proxy(service="reddit")
    admin_api.patch(f"/api/v1/proxies/{frozen.id}", {"status": "frozen"})
    with CaptureQueriesContext(db_connection) as few:
        admin_api.get("/api/v1/proxies", service="reddit", status="active")
    for _ in range(10):
        make_proxy(service="reddit")
    with CaptureQueriesContext(db_connection) as many:
        response = admin_api.get("/api/v1/proxies", service="reddit", status="active")
    assert len(many) == len(few)
    body = response.json()
    assert body["count"] == 13 and len(body["items"]) == 13
    assert CANARY not in response.content.decode()
    assert admin_api.get("/api/v1/proxies", status="frozen").json()["count"] == 1


def test_detail_and_patch_of_a_proxy(admin_api, make_proxy, clock):
    proxy = make_proxy(password=CANARY)
    detail = admin_api.get(f"/api/v1/proxies/{proxy.id}")
    assert detail.status_code == 200 and CANARY not in detail.content.decode()
    patched = admin_api.patch(f"/api/v1/proxies/{proxy.id}", {"status": "frozen", "country": "de"})
    assert patched.json()["status"] == "frozen" and patched.json()["country"] == "DE"
    bad = admin_api.patch(f"/api/v1/proxies/{proxy.id}", {"status": "quarantined"})
    assert bad.status_code == 422
    assert admin_api.get("/api/v1/proxies/999999").status_code == 404
