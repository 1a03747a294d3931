"""The circuit endpoints of API.md, through the whole stack."""

from __future__ import annotations

import pytest

from apps.accounts.models import AuditEntry
from apps.circuits.models import Circuit
from tests.circuits.faults import caches_for, closed_port_url, degraded_count, own_redis

pytestmark = pytest.mark.django_db

BASE = "/api/v1/circuits"


def test_put_creates_a_circuit_with_its_configuration(admin_api, clock):
    body = {
        "failure_threshold": 2,
        "recovery_timeout_ms": 5000,
        "half_open_max_calls": 1,
        "success_threshold": 1,
    }
    response = admin_api.put(f"{BASE}/shop", body)
    assert response.status_code == 200
    data = response.json()
    assert {k: data[k] for k in body} == body
    assert (data["name"], data["state"], data["failure_count"], data["opened_at"]) == (
        "shop",
        "closed",
        0,
        None,
    )
    assert AuditEntry.objects.get().action == "circuit.configure"


def test_put_needs_an_admin_key(scraper_api):
    response = scraper_api.put(f"{BASE}/shop", {"failure_threshold": 2})
    assert response.status_code == 403
    assert not Circuit.objects.exists()


def test_put_rejects_bad_values_with_the_field_named(admin_api):
    response = admin_api.put(f"{BASE}/shop", {"half_open_max_calls": 0})
    assert response.status_code == 422
    assert response.json()["error"]["details"]["fields"][0]["path"] == "half_open_max_calls"


def test_acquire_creates_the_circuit_on_first_use_and_allows(scraper_api, clock):
    response = scraper_api.post(f"{BASE}/fresh/acquire")
    assert response.status_code == 200
    assert response.json() == {
        "allowed": True,
        "state": "closed",
        "retry_after_ms": 0.0,
        "degraded": False,
        "probe_id": None,
    }
    assert Circuit.objects.filter(name="fresh").exists()


def test_failures_open_the_circuit_and_acquire_is_refused_with_retry_after(
    admin_api, scraper_api, clock
):
    admin_api.put(f"{BASE}/shop", {"failure_threshold": 2, "recovery_timeout_ms": 5000})
    for _ in range(2):
        last = scraper_api.post(f"{BASE}/shop/record", {"outcome": "failure", "duration_ms": 3})
    assert last.status_code == 200
    assert (last.json()["state"], last.json()["failure_count"]) == ("open", 2)
    assert last.json()["opened_at"].startswith("2026-09-21T14:13:20")
    clock.advance(ms=1500)
    answer = scraper_api.post(f"{BASE}/shop/acquire").json()
    assert (answer["allowed"], answer["state"], answer["retry_after_ms"]) == (False, "open", 3500)


def test_half_open_probe_hands_out_a_probe_id_and_success_closes(admin_api, scraper_api, clock):
    admin_api.put(f"{BASE}/shop", {"failure_threshold": 1, "recovery_timeout_ms": 1000})
    scraper_api.post(f"{BASE}/shop/record", {"outcome": "failure"})
    clock.advance(ms=1000)
    answer = scraper_api.post(f"{BASE}/shop/acquire").json()
    assert (answer["allowed"], answer["state"]) == (True, "half_open")
    assert answer["probe_id"]
    refused = scraper_api.post(f"{BASE}/shop/acquire").json()
    assert refused["allowed"] is False
    closed = scraper_api.post(
        f"{BASE}/shop/record", {"outcome": "success", "probe_id": answer["probe_id"]}
    )
    assert closed.json()["state"] == "closed"


def test_events_are_listed_newest_first(admin_api, scraper_api, clock):
    admin_api.put(f"{BASE}/shop", {"failure_threshold": 1, "recovery_timeout_ms": 1000})
    scraper_api.post(f"{BASE}/shop/record", {"outcome": "failure"})
    clock.advance(ms=1000)
    scraper_api.post(f"{BASE}/shop/acquire")
    data = scraper_api.get(f"{BASE}/shop/events").json()
    assert data["count"] == 2
    assert [(e["from_state"], e["to_state"]) for e in data["items"]] == [
        ("open", "half_open"),
        ("closed", "open"),
    ]
    assert set(data["items"][0]) == {"from_state", "to_state", "at", "reason"}


def test_events_of_an_unknown_circuit_are_404(scraper_api):
    response = scraper_api.get(f"{BASE}/nope/events")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_force_needs_admin_and_is_audited(admin_api, scraper_api, clock):
    assert scraper_api.post(f"{BASE}/shop/force", {"state": "forced_open"}).status_code == 403
    response = admin_api.post(f"{BASE}/shop/force", {"state": "forced_open"})
    assert response.status_code == 200
    assert response.json()["state"] == "forced_open"
    assert scraper_api.post(f"{BASE}/shop/acquire").json()["allowed"] is False
    assert admin_api.post(f"{BASE}/shop/force", {"state": "closed"}).json()["state"] == "closed"
    assert list(AuditEntry.objects.order_by("id").values_list("action", flat=True)) == [
        "circuit.force",
        "circuit.reset",
    ]


def test_force_to_an_unforceable_state_is_422(admin_api):
    response = admin_api.post(f"{BASE}/shop/force", {"state": "half_open"})
    assert response.status_code == 422


def test_a_bad_circuit_name_is_422(scraper_api):
    assert scraper_api.post(f"{BASE}/bad:name/acquire").status_code == 422


def test_record_validates_its_outcome(scraper_api):
    response = scraper_api.post(f"{BASE}/shop/record", {"outcome": "maybe"})
    assert response.status_code == 422
    assert response.json()["error"]["details"]["fields"][0]["path"] == "outcome"


def test_list_and_get(admin_api, scraper_api):
    admin_api.put(f"{BASE}/a", {})
    admin_api.put(f"{BASE}/b", {})
    assert [c["name"] for c in scraper_api.get(BASE).json()["items"]] == ["a", "b"]
    assert scraper_api.get(f"{BASE}/a").json()["state"] == "closed"
    assert scraper_api.get(f"{BASE}/zzz").status_code == 404


def _degraded_count(client):
    return degraded_count(client, "circuits")


@pytest.mark.slow
def test_redis_unreachable_acquire_fails_open_says_degraded_and_is_counted(
    scraper_api, settings, client
):
    Circuit.objects.create(name="shop")
    before = _degraded_count(client)
    settings.CACHES = caches_for(closed_port_url(), settings.CACHES)
    answer = scraper_api.post(f"{BASE}/shop/acquire")
    assert answer.status_code == 200
    assert answer.json() == {
        "allowed": True,
        "state": "closed",
        "retry_after_ms": 0.0,
        "degraded": True,
        "probe_id": None,
    }
    record = scraper_api.post(f"{BASE}/shop/record", {"outcome": "failure"}).json()
    assert (record["degraded"], record["state"]) == (True, "closed")
    assert _degraded_count(client) == before + 2


@pytest.mark.slow
def test_redis_unreachable_keeps_a_forced_open_circuit_shut(scraper_api, settings):
    Circuit.objects.create(name="shop", forced_state="forced_open")
    settings.CACHES = caches_for(closed_port_url(), settings.CACHES)
    answer = scraper_api.post(f"{BASE}/shop/acquire").json()
    assert (answer["allowed"], answer["state"], answer["degraded"]) == (False, "forced_open", True)


@pytest.mark.slow
def test_force_is_refused_when_redis_is_unreachable(admin_api, settings):
    Circuit.objects.create(name="shop")
    settings.CACHES = caches_for(closed_port_url(), settings.CACHES)
    response = admin_api.post(f"{BASE}/shop/force", {"state": "forced_open"})
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "redis_unavailable"
    assert Circuit.objects.get().forced_state == ""
    assert not AuditEntry.objects.exists()


@pytest.mark.slow
def test_when_our_redis_dies_and_returns_circuits_go_degraded_then_recover(
    scraper_api, settings, clock
):
    Circuit.objects.create(name="shop", failure_threshold=1)
    with own_redis() as server:
        settings.CACHES = caches_for(server.url, settings.CACHES)
        assert scraper_api.post(f"{BASE}/shop/acquire").json()["degraded"] is False
        server.stop()
        assert scraper_api.post(f"{BASE}/shop/acquire").json()["degraded"] is True
        server.start()
        # within REDIS_FAILOPEN_RETRY_SECONDS the process does not retry Redis
        assert scraper_api.post(f"{BASE}/shop/acquire").json()["degraded"] is True
        clock.advance(settings.REDIS_FAILOPEN_RETRY_SECONDS)
        answer = scraper_api.post(f"{BASE}/shop/acquire").json()
        assert (answer["degraded"], answer["allowed"]) == (False, True)


@pytest.mark.slow
def test_redis_unreachable_a_forced_closed_circuit_is_allowed_and_says_so(scraper_api, settings):
    Circuit.objects.create(name="shop", forced_state="forced_closed")
    settings.CACHES = caches_for(closed_port_url(), settings.CACHES)
    answer = scraper_api.post(f"{BASE}/shop/acquire").json()
    assert (answer["allowed"], answer["state"], answer["degraded"]) == (True, "forced_closed", True)
