"""The rate-limit endpoints of API.md, through the whole stack."""

from __future__ import annotations

import pytest

from apps.accounts.models import ApiKey, AuditEntry
from apps.ratelimits.models import Policy
from tests.circuits.faults import caches_for, closed_port_url, degraded_count, own_redis

pytestmark = pytest.mark.django_db

BASE = "/api/v1/ratelimits"


def test_put_creates_a_policy_and_is_audited(admin_api):
    response = admin_api.put(f"{BASE}/reddit", {"limit": 60, "period_ms": 60000, "burst": 10})
    assert response.status_code == 200
    assert response.json() == {
        "key": "reddit",
        "limit": 60,
        "period_ms": 60000.0,
        "burst": 10,
        "shadow": False,
        "description": "",
        "overrides": [],
    }
    assert AuditEntry.objects.get().action == "ratelimit.put"


def test_put_needs_admin_and_validates(admin_api, scraper_api):
    assert scraper_api.put(f"{BASE}/reddit", {"limit": 1, "period_ms": 1}).status_code == 403
    bad = admin_api.put(f"{BASE}/reddit", {"limit": 0, "period_ms": 1000})
    assert bad.status_code == 422
    assert bad.json()["error"]["details"]["fields"][0]["path"] == "limit"
    assert not Policy.objects.exists()


def test_acquire_answers_with_the_contract_fields_and_the_deciding_policy(
    admin_api, scraper_api, clock
):
    admin_api.put(f"{BASE}/reddit", {"limit": 60, "period_ms": 60000, "burst": 2})
    first = scraper_api.post(f"{BASE}/reddit/acquire", {"cost": 1})
    assert first.status_code == 200
    body = first.json()
    assert {k: body[k] for k in ("allowed", "remaining", "retry_after_ms", "reset_after_ms")} == {
        "allowed": True,
        "remaining": 1,
        "retry_after_ms": 0.0,
        "reset_after_ms": 1000.0,
    }
    assert (body["policy"], body["tier"], body["degraded"]) == ("reddit", "default", False)
    scraper_api.post(f"{BASE}/reddit/acquire", {"cost": 1})
    denied = scraper_api.post(f"{BASE}/reddit/acquire", {"cost": 1}).json()
    assert (denied["allowed"], denied["retry_after_ms"]) == (False, 1000.0)


def test_acquire_on_an_unknown_key_is_404(scraper_api):
    response = scraper_api.post(f"{BASE}/nope/acquire", {"cost": 1})
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_an_override_for_a_premium_key_is_used_for_that_key_only(
    admin_api, scraper_api, make_api_key, clock
):
    from django.test import Client

    from tests.conftest import ApiClient

    premium_raw = make_api_key("scraper", name="premium-scraper")
    premium = ApiKey.objects.get(name="premium-scraper")
    admin_api.put(f"{BASE}/reddit", {"limit": 60, "period_ms": 60000, "burst": 1})
    policy = admin_api.put(
        f"{BASE}/reddit/overrides/{premium.pk}",
        {"limit": 600, "period_ms": 60000, "burst": 3, "tier": "gold"},
    ).json()
    assert policy["overrides"][0]["tier"] == "gold"
    premium_api = ApiClient(Client(), premium_raw)
    rich = [premium_api.post(f"{BASE}/reddit/acquire").json() for _ in range(4)]
    plain = [scraper_api.post(f"{BASE}/reddit/acquire").json() for _ in range(2)]
    assert [r["allowed"] for r in rich] == [True, True, True, False]
    assert rich[0]["tier"] == "gold"
    assert [p["allowed"] for p in plain] == [True, False]
    assert plain[0]["tier"] == "default"
    deleted = admin_api.delete(f"{BASE}/reddit/overrides/{premium.pk}")
    assert deleted.status_code == 200 and deleted.json()["overrides"] == []


def test_delete_policy(admin_api, scraper_api):
    admin_api.put(f"{BASE}/reddit", {"limit": 60, "period_ms": 60000})
    assert admin_api.delete(f"{BASE}/reddit").status_code == 204
    assert scraper_api.get(f"{BASE}/reddit").status_code == 404


def test_burst_defaults_to_the_limit(admin_api):
    assert admin_api.put(f"{BASE}/r", {"limit": 5, "period_ms": 1000}).json()["burst"] == 5


def _degraded_count(client):
    return degraded_count(client, "ratelimits")


@pytest.mark.slow
def test_redis_unreachable_falls_back_to_a_local_bucket_of_the_same_policy(
    admin_api, scraper_api, settings, client, clock
):
    admin_api.put(f"{BASE}/reddit", {"limit": 60, "period_ms": 60000, "burst": 3})
    before = _degraded_count(client)
    settings.CACHES = caches_for(closed_port_url(), settings.CACHES)
    answers = [scraper_api.post(f"{BASE}/reddit/acquire").json() for _ in range(4)]
    assert [a["allowed"] for a in answers] == [True, True, True, False]
    assert all(a["degraded"] for a in answers)
    assert answers[3]["retry_after_ms"] == 1000.0
    assert _degraded_count(client) == before + 4


@pytest.mark.slow
def test_when_our_redis_returns_the_shared_bucket_decides_again(
    admin_api, scraper_api, settings, clock
):
    admin_api.put(f"{BASE}/reddit", {"limit": 60, "period_ms": 60000, "burst": 3})
    with own_redis() as server:
        settings.CACHES = caches_for(server.url, settings.CACHES)
        assert scraper_api.post(f"{BASE}/reddit/acquire").json()["degraded"] is False
        server.stop()
        assert scraper_api.post(f"{BASE}/reddit/acquire").json()["degraded"] is True
        server.start()
        clock.advance(settings.REDIS_FAILOPEN_RETRY_SECONDS)
        answer = scraper_api.post(f"{BASE}/reddit/acquire").json()
        assert answer["degraded"] is False


def test_shadow_mode_through_the_api_never_denies_and_says_what_it_would_do(
    admin_api, scraper_api, clock
):
    admin_api.put(f"{BASE}/trial", {"limit": 60, "period_ms": 60000, "burst": 2, "shadow": True})
    answers = [scraper_api.post(f"{BASE}/trial/acquire", {"cost": 1}).json() for _ in range(4)]
    assert [a["allowed"] for a in answers] == [True] * 4
    assert [a["would_allow"] for a in answers] == [True, True, False, False]
    assert all(a["shadow"] and a["retry_after_ms"] == 0.0 for a in answers)


def test_a_cost_above_the_burst_is_422_naming_the_field(admin_api, scraper_api):
    admin_api.put(f"{BASE}/reddit", {"limit": 60, "period_ms": 60000, "burst": 5})
    response = scraper_api.post(f"{BASE}/reddit/acquire", {"cost": 6})
    assert response.status_code == 422
    assert response.json()["error"]["details"]["fields"][0]["path"] == "cost"


def test_acquire_needs_a_key(anon_api):
    assert anon_api.post(f"{BASE}/reddit/acquire", {"cost": 1}).status_code == 401
