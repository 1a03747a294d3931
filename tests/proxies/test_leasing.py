"""Leasing through the API: strategies, sticky sessions, bans, caps, expiry, 503."""

from __future__ import annotations

from collections import Counter

import pytest
import redis
from django.test import Client

from apps.proxies.models import Lease, Proxy, ProxyBan
from apps.proxies.pool import active_key, active_lease_counts, pool_forget
from apps.proxies.services import ban_cooldown_seconds, leases_flush
from coreadmin.devservers import closed_port
from coreadmin.redis import connection
from tests.conftest import ApiClient

LEASE = "/api/v1/proxies/lease"


def report(api, lease_id: str, outcome: str = "success", **extra):
    body = {"outcome": outcome, "latency_ms": 100.0, "status_code": 200, **extra}
    return api.post(f"/api/v1/proxies/leases/{lease_id}/report", body)


def lease(api, target: str = "reddit.com", service: str = "reddit", **extra):
    return api.post(LEASE, {"service": service, "target": target, **extra})


def test_a_lease_returns_the_proxy_url_with_its_password_and_an_expiry(
    scraper_api, make_proxy, clock
):
    proxy = make_proxy(password="s3cret")
    response = lease(scraper_api)
    assert response.status_code == 200
    body = response.json()
    assert body["proxy_id"] == proxy.id
    assert body["proxy_url"] == f"http://user:s3cret@10.0.0.1:{proxy.port}"
    assert body["expires_at"] == "2026-09-21T14:18:20+00:00"
    assert body["slow_down_ms"] == 0
    assert leases_flush() == 1
    assert Lease.objects.get(pk=body["lease_id"]).proxy_id == proxy.id


def test_round_robin_spreads_leases_evenly(scraper_api, make_proxy, clock):
    proxies = [make_proxy() for _ in range(4)]
    counts = Counter(lease(scraper_api).json()["proxy_id"] for _ in range(40))
    assert counts == {p.id: 10 for p in proxies}


def test_least_recently_used_picks_the_proxy_idle_longest(scraper_api, make_proxy, policy, clock):
    policy(strategy="lru")
    a, b, c = make_proxy(), make_proxy(), make_proxy()
    order = []
    for _ in range(3):
        order.append(lease(scraper_api).json()["proxy_id"])
        clock.advance(1)
    assert sorted(order) == sorted([a.id, b.id, c.id])
    clock.advance(1)
    assert lease(scraper_api).json()["proxy_id"] == order[0]


def test_weighted_favours_healthy_proxies(scraper_api, make_proxy, policy, clock):
    policy(strategy="weighted")
    healthy, sick = make_proxy(), make_proxy()
    Proxy.objects.filter(pk=sick.pk).update(health_score=0.1)
    pool_forget(service="reddit")  # rebuilt with the new weights on the next lease
    counts = Counter(lease(scraper_api).json()["proxy_id"] for _ in range(200))
    assert counts[healthy.id] > 3 * counts[sick.id]
    assert counts[sick.id] > 0


def test_a_sticky_session_keeps_its_proxy_while_it_stays_usable(
    scraper_api, admin_api, make_proxy, clock
):
    make_proxy(), make_proxy(), make_proxy()
    first = lease(scraper_api, session="s-1").json()["proxy_id"]
    assert {lease(scraper_api, session="s-1").json()["proxy_id"] for _ in range(6)} == {first}
    admin_api.patch(f"/api/v1/proxies/{first}", {"status": "frozen"})
    moved = lease(scraper_api, session="s-1").json()["proxy_id"]
    assert moved != first
    assert lease(scraper_api, session="s-1").json()["proxy_id"] == moved


def test_frozen_proxies_are_never_leased(scraper_api, admin_api, make_proxy, clock):
    usable, frozen = make_proxy(), make_proxy()
    assert admin_api.patch(f"/api/v1/proxies/{frozen.id}", {"status": "frozen"}).status_code == 200
    assert {lease(scraper_api).json()["proxy_id"] for _ in range(10)} == {usable.id}


def test_no_usable_proxy_gives_503_with_retry_after(scraper_api, make_proxy, clock):
    response = lease(scraper_api, service="empty")
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "no_proxy_available"
    assert response["Retry-After"] == "30"


def test_a_ban_keeps_the_proxy_off_that_target_only_until_its_cooldown_ends(
    scraper_api, make_proxy, clock
):
    proxy = make_proxy()
    first = lease(scraper_api).json()
    report(scraper_api, first["lease_id"], "banned", status_code=403)
    refused = lease(scraper_api)
    assert refused.status_code == 503
    assert refused["Retry-After"] == str(ban_cooldown_seconds(1))
    other = lease(scraper_api, target="old.reddit.com")
    assert other.status_code == 200 and other.json()["proxy_id"] == proxy.id
    clock.advance(ban_cooldown_seconds(1) - 1)
    assert lease(scraper_api).status_code == 503
    clock.advance(2)
    assert lease(scraper_api).json()["proxy_id"] == proxy.id


def test_repeated_bans_double_the_cooldown_up_to_the_cap(scraper_api, make_proxy, clock, settings):
    settings.PROXY_BAN_BASE_SECONDS = 60
    settings.PROXY_BAN_MAX_SECONDS = 200
    proxy = make_proxy()
    cooldowns = []
    for _ in range(4):
        grant = lease(scraper_api).json()
        report(scraper_api, grant["lease_id"], "banned")
        ban = ProxyBan.objects.get(proxy=proxy, target="reddit.com")
        cooldowns.append((ban.banned_until - ban.banned_at).total_seconds())
        clock.advance(cooldowns[-1] + 1)
    assert cooldowns == [60, 120, 200, 200]


def test_the_banned_target_shows_in_the_proxy_object(scraper_api, make_proxy, clock):
    make_proxy()
    grant = lease(scraper_api).json()
    body = report(scraper_api, grant["lease_id"], "banned").json()
    assert body["banned_targets"] == ["reddit.com"]


def test_a_report_on_another_keys_lease_is_404_and_a_second_report_is_409(
    scraper_api, make_api_key, make_proxy, clock
):
    make_proxy()
    grant = lease(scraper_api).json()
    other = ApiClient(Client(), make_api_key("scraper", name="other"))
    assert report(other, grant["lease_id"]).status_code == 404
    assert report(scraper_api, grant["lease_id"]).status_code == 200
    again = report(scraper_api, grant["lease_id"])
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "lease_already_reported"


def test_the_per_proxy_cap_holds_until_a_report_or_the_lease_expiry(
    scraper_api, make_proxy, policy, clock
):
    policy(max_leases_per_proxy=1, lease_seconds=60)
    make_proxy(), make_proxy()
    first, second = lease(scraper_api).json(), lease(scraper_api).json()
    assert first["proxy_id"] != second["proxy_id"]
    clock.advance(20)
    refused = lease(scraper_api)
    assert refused.status_code == 503
    assert refused["Retry-After"] == "40"  # when the first lease expires
    report(scraper_api, first["lease_id"])
    assert lease(scraper_api).json()["proxy_id"] == first["proxy_id"]
    assert lease(scraper_api).status_code == 503
    clock.advance(61)
    assert lease(scraper_api).status_code == 200


def test_failures_in_a_row_quarantine_a_proxy(scraper_api, make_proxy, clock, settings):
    settings.PROXY_QUARANTINE_AFTER_FAILURES = 3
    proxy = make_proxy()
    for _ in range(3):
        report(scraper_api, lease(scraper_api).json()["lease_id"], "failure")
    proxy.refresh_from_db()
    assert proxy.status == "quarantined"
    assert proxy.next_check_at is not None
    assert lease(scraper_api).status_code == 503


def test_outcomes_move_the_health_score_and_averages(scraper_api, make_proxy, clock):
    make_proxy()
    body = report(scraper_api, lease(scraper_api).json()["lease_id"], "timeout").json()
    assert body["health_score"] == pytest.approx(0.8)
    assert body["success_rate"] == pytest.approx(0.8)
    body = report(scraper_api, lease(scraper_api).json()["lease_id"], latency_ms=200.0).json()
    assert body["latency_ms"] == 200.0
    assert body["health_score"] == pytest.approx(0.84)


def test_a_shrinking_pool_tells_lessees_to_slow_down(
    scraper_api, admin_api, make_proxy, clock, settings
):
    settings.PROXY_SLOW_DOWN_MAX_MS = 1000.0
    proxies = [make_proxy() for _ in range(4)]
    assert lease(scraper_api).json()["slow_down_ms"] == 0
    for proxy in proxies[:3]:
        admin_api.patch(f"/api/v1/proxies/{proxy.id}", {"status": "frozen"})
    # 1 of 4 usable, threshold 0.5: slow down by 1000 * (1 - 0.25 / 0.5)
    assert lease(scraper_api).json()["slow_down_ms"] == 500.0


def test_the_pool_is_rebuilt_from_postgres_when_redis_lost_it(scraper_api, make_proxy, clock):
    proxy = make_proxy()
    grant = lease(scraper_api).json()
    report(scraper_api, grant["lease_id"], "banned")
    client = connection()
    client.delete(*client.keys("*px:*"))
    assert lease(scraper_api).status_code == 503  # the ban came back from Postgres
    assert lease(scraper_api, target="other.com").json()["proxy_id"] == proxy.id


def test_a_key_restricted_to_another_service_cannot_lease(make_api_key, make_proxy, clock):
    make_proxy()
    api = ApiClient(Client(), make_api_key("scraper", service="twitter", name="tw"))
    assert lease(api).status_code == 403


def test_leases_reach_postgres_in_batches_without_overwriting_reports(
    scraper_api, make_proxy, clock
):
    make_proxy()
    reported, unreported = lease(scraper_api).json(), lease(scraper_api, session="s").json()
    report(scraper_api, reported["lease_id"], "timeout")
    assert leases_flush() == 3  # two leases and one report
    assert leases_flush() == 0
    rows = {row.id: row for row in Lease.objects.all()}
    assert rows[reported["lease_id"]].outcome == "timeout"
    assert rows[unreported["lease_id"]].outcome == ""
    assert rows[unreported["lease_id"]].session == "s"


def test_a_late_report_after_the_record_left_redis_uses_the_stored_row(
    scraper_api, make_proxy, clock
):
    make_proxy()
    grant = lease(scraper_api).json()
    leases_flush()
    client = connection()
    client.delete(*client.keys(f"*px:lease:{grant['lease_id']}"))
    assert report(scraper_api, grant["lease_id"]).status_code == 200
    assert Lease.objects.get(pk=grant["lease_id"]).outcome == "success"
    assert report(scraper_api, grant["lease_id"]).status_code == 409


def test_expired_leases_leave_the_live_set_even_without_a_cap(scraper_api, make_proxy, clock):
    proxy = make_proxy()
    for _ in range(3):
        lease(scraper_api)
    assert active_lease_counts([proxy.id]) == {proxy.id: 3}
    clock.advance(301)
    lease(scraper_api)
    assert connection().zcard(active_key(proxy.id)) == 1


def test_leasing_fails_closed_with_503_when_redis_is_unreachable(
    scraper_api, make_proxy, clock, monkeypatch
):
    make_proxy()
    dead = redis.Redis(host="127.0.0.1", port=closed_port(), socket_connect_timeout=0.2)
    monkeypatch.setattr("apps.proxies.pool.connection", lambda: dead)
    response = lease(scraper_api)
    assert response.status_code == 503
    assert response["Retry-After"] == "1"
    assert response.json()["error"]["code"] == "service_unavailable"


def test_the_lease_that_fills_a_journal_batch_writes_it_without_beat(
    scraper_api, make_proxy, clock, monkeypatch
):
    monkeypatch.setattr("apps.proxies.pool.JOURNAL_FLUSH_EVERY", 5)
    make_proxy()
    for _ in range(4):
        lease(scraper_api)
    assert Lease.objects.count() == 0
    lease(scraper_api)
    assert Lease.objects.count() == 5


def test_a_ban_wave_on_one_target_slows_leases_for_that_target_only(
    scraper_api, make_proxy, clock, settings
):
    settings.PROXY_SLOW_DOWN_MAX_MS = 1000.0
    for _ in range(4):
        make_proxy()
    for _ in range(3):
        report(scraper_api, lease(scraper_api, target="hot.com").json()["lease_id"], "banned")
    # 1 of 4 usable for hot.com (threshold 0.5): 1000 * (1 - 0.25 / 0.5)
    assert lease(scraper_api, target="hot.com").json()["slow_down_ms"] == 500.0
    assert lease(scraper_api, target="calm.com").json()["slow_down_ms"] == 0
