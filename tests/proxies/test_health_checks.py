"""Health checks go through real forward proxies on 127.0.0.1 to the real local target."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.core.management import CommandError, call_command

from apps.proxies.models import HealthCheck, Proxy
from apps.proxies.services import (
    health_check_record,
    proxies_check,
    proxies_claim_due_checks,
    proxy_create,
    recheck_delay_seconds,
)
from apps.proxies.tasks import check_due_proxies, prune_history
from coreadmin.devservers import TARGET_OK_TEXT, ForwardProxy, TargetSite, closed_port


@pytest.fixture
def check_settings(settings, target_site):
    settings.PROXY_CHECK_URL = target_site.url("/health")
    settings.PROXY_CHECK_EXPECT_TEXT = TARGET_OK_TEXT
    settings.PROXY_CHECK_TIMEOUT_SECONDS = 0.5
    return settings


@pytest.fixture
def fleet() -> Iterator[dict[str, ForwardProxy]]:
    with (
        ForwardProxy(auth=("u", "good-pw")) as healthy,
        ForwardProxy("refuse") as refusing,
        ForwardProxy("slow", delay_ms=3000) as slow,
        ForwardProxy("banned", ban_status=200) as captcha,
    ):
        yield {"healthy": healthy, "refusing": refusing, "slow": slow, "captcha": captcha}


def _register(fleet, service="reddit") -> dict[str, Proxy]:
    return {name: proxy_create(url=server.url, service=service) for name, server in fleet.items()}


def test_checks_classify_healthy_refusing_slow_and_captcha_proxies(
    check_settings, fleet, db, clock
):
    proxies = _register(fleet)
    results = proxies_check(proxies=list(proxies.values()))
    verdicts = {name: results[p.pk] for name, p in proxies.items()}
    assert verdicts["healthy"].ok and verdicts["healthy"].latency_ms > 0
    assert not verdicts["refusing"].ok and "connection error" in verdicts["refusing"].error
    assert not verdicts["slow"].ok and verdicts["slow"].error == "timeout"
    assert not verdicts["captcha"].ok and verdicts["captcha"].status_code == 200
    assert "expected text missing" in verdicts["captcha"].error
    assert fleet["healthy"].requests == 1  # the check really went through the proxy
    history = {c.proxy_id: c for c in HealthCheck.objects.all()}
    assert history[proxies["healthy"].pk].ok and not history[proxies["slow"].pk].ok
    healthy = Proxy.objects.get(pk=proxies["healthy"].pk)
    assert healthy.last_checked_at == clock.now()


def test_a_dead_address_fails_its_check(check_settings, db, clock):
    proxy = proxy_create(url=f"http://127.0.0.1:{closed_port()}", service="reddit")
    assert not proxies_check(proxies=[proxy])[proxy.pk].ok


def test_strict_check_exits_non_zero_naming_each_failed_proxy(
    check_settings, fleet, db, clock, capsys
):
    proxies = _register(fleet)
    with pytest.raises(CommandError) as failure:
        call_command("check_proxies", "--strict", "--attempts", "2")
    message = str(failure.value)
    assert "3 proxies failed" in message
    for name in ("refusing", "slow", "captcha"):
        assert f"{proxies[name].pk} {proxies[name].display_url}" in message
    assert f"{proxies['healthy'].pk} " not in message
    assert fleet["refusing"].requests == 2  # two attempts each
    assert "good-pw" not in message + capsys.readouterr().out


def test_a_lenient_check_of_healthy_proxies_exits_zero(check_settings, fleet, db, clock, capsys):
    proxy_create(url=fleet["healthy"].url, service="only-good")
    call_command("check_proxies", "--strict", "--service", "only-good")
    assert "1 of 1 proxies passed" in capsys.readouterr().out


def test_a_quarantined_proxy_is_rechecked_with_growing_randomized_backoff(
    check_settings, fleet, db, clock
):
    proxies = _register({"refusing": fleet["refusing"], "healthy": fleet["healthy"]})
    for proxy in proxies.values():
        Proxy.objects.filter(pk=proxy.pk).update(status="quarantined", next_check_at=clock.now())
    check_due_proxies()
    bad = Proxy.objects.get(pk=proxies["refusing"].pk)
    good = Proxy.objects.get(pk=proxies["healthy"].pk)
    assert good.status == "active"
    assert bad.status == "quarantined" and bad.quarantine_attempts == 1
    first_wait = (bad.next_check_at - clock.now()).total_seconds()
    assert 60 <= first_wait <= 180  # base 60 s * 2^1, times 0.5..1.5
    assert check_due_proxies() == 0  # nothing due before the backoff ends
    clock.advance(first_wait)
    check_due_proxies()
    bad.refresh_from_db()
    assert bad.quarantine_attempts == 2
    assert 120 <= (bad.next_check_at - clock.now()).total_seconds() <= 360


def test_the_backoff_is_capped_and_randomized(settings):
    settings.PROXY_RECHECK_MAX_SECONDS = 600
    delays = {round(recheck_delay_seconds(20), 3) for _ in range(20)}
    assert all(300 <= d <= 900 for d in delays) and len(delays) > 1


def test_frozen_proxies_are_not_checked(check_settings, fleet, db, clock):
    proxy = proxy_create(url=fleet["healthy"].url, service="reddit")
    Proxy.objects.filter(pk=proxy.pk).update(status="frozen")
    assert check_due_proxies() == 0
    assert fleet["healthy"].requests == 0
    assert HealthCheck.objects.count() == 0


def test_history_older_than_the_retention_is_pruned(make_proxy, clock, settings):
    settings.PROXY_CHECK_HISTORY_DAYS = 7
    proxy = make_proxy()
    health_check_record(proxy=proxy, ok=True, latency_ms=10.0)
    clock.advance(8 * 86400)
    health_check_record(proxy=proxy, ok=False, latency_ms=None, error="timeout")
    assert prune_history() == 1
    assert list(HealthCheck.objects.values_list("ok", flat=True)) == [False]


def test_a_run_claims_its_proxies_so_an_overlapping_run_skips_them(make_proxy, clock):
    proxies = [make_proxy() for _ in range(3)]
    first = proxies_claim_due_checks(limit=2)
    second = proxies_claim_due_checks(limit=2)
    assert len(first) == 2 and [p.pk for p in second] == [
        p.pk for p in proxies if p.pk not in {c.pk for c in first}
    ]
    assert proxies_claim_due_checks() == []


def test_checks_run_at_most_the_configured_number_at_once(settings, db, clock):
    with TargetSite() as site, ForwardProxy() as server:
        settings.PROXY_CHECK_URL = site.url("/slow?ms=150")
        settings.PROXY_CHECK_EXPECT_TEXT = TARGET_OK_TEXT
        settings.PROXY_CHECK_CONCURRENCY = 2
        proxies = [
            proxy_create(url=f"http://{user}:pw@{server.netloc}", service="reddit")
            for user in ("a", "b", "c", "d", "e")
        ]
        results = proxies_check(proxies=proxies)
    assert all(result.ok for result in results.values())
    assert site.hits["/slow"] == 5
    assert site.max_in_flight <= 2
