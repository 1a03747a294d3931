"""The fleet simulator (apps/fleet/simulator) against a live coreadmin: every capability
is exercised through coreadmin_client, and what the scrapers submitted reconciles."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.db import connection

from apps.caching.models import CacheStat
from apps.circuits.models import Circuit
from apps.datasets.models import Record, RetryItem
from apps.datasets.services.retries import retries_process_due
from apps.fleet.models import ScraperInstance
from apps.fleet.simulator import Plan, Report, simulate
from apps.fleet.simulator.provision import PARENTS, POSTS
from apps.fleet.simulator.world import World
from apps.logs.models import LogLine
from apps.proxies.models import Lease, Proxy, ProxyBan
from apps.proxies.services import leases_flush
from apps.tracing.models import Span
from coreadmin.clock import clock

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def server(live_server: Any) -> Iterator[str]:
    yield str(live_server.url)
    with connection.cursor() as cursor:  # unmanaged, partitioned: not flushed by Django
        cursor.execute("TRUNCATE tracing_span, logs_logline")


@pytest.fixture
def admin_key(make_api_key: Callable[..., str]) -> str:
    return make_api_key("admin", name="simulator")


def small_plan(**kw: Any) -> Plan:
    defaults: dict[str, Any] = {
        "scrapers": 2,
        "duration": 120.0,  # a bound; the page count ends the run
        "pages": 40,
        "pace": 0.0,
        "outage": None,
        "heartbeat_interval": 60.0,
        "batch_interval": 0.2,
        "invalid_share": 0.1,
        "orphan_share": 0.1,
        "orphan_delay": 0.0,
    }
    return Plan(**{**defaults, **kw})


@pytest.fixture
def ran(server: str, admin_key: str) -> tuple[Report, World]:
    worlds: list[World] = []
    report = simulate(small_plan(), server, admin_key, on_world=worlds.append)
    return report, worlds[0]


def test_what_the_fleet_submitted_equals_what_the_server_holds(ran: tuple[Report, World]):
    report, _ = ran
    rows = report.reconciliation()
    assert report.exact, report.text()
    posts = rows[POSTS]
    assert posts["submitted"] == report.tally.pages["ok"] > 0
    assert posts["submitted"] == posts["stored"] + posts["pending"] + posts["dead"]
    assert Record.objects.filter(dataset__name=POSTS).count() == posts["stored"]
    assert rows[PARENTS]["submitted"] >= 1  # the late subreddits


def test_every_capability_saw_the_fleet(ran: tuple[Report, World]):
    report, world = ran
    # Proxies: every lease the server handed out is this world's, and each reached a site.
    ours = Proxy.objects.filter(service="sim")
    assert ours.count() == len(world.proxies)
    leases_flush()  # leases live in Redis until the beat task writes them down
    assert Lease.objects.filter(proxy__in=ours).count() >= report.tally.pages["ok"]
    assert sum(world.site_hits().values()) > 0
    healthy = [world.proxies[f"healthy-{i}"] for i in (1, 2, 3)]
    assert all(p.requests > 0 for p in healthy)
    # The proxy whose IP the shop banned ends up banned for that target only.
    if world.proxies["shop-banned"].bans_served:
        banned = ProxyBan.objects.filter(proxy__port=world.proxies["shop-banned"].port)
        assert set(banned.values_list("target", flat=True)) <= {"shop", "news"}
        assert banned.filter(target="shop").exists()
    # Circuits and rate limits were provisioned and used.
    assert set(Circuit.objects.values_list("name", flat=True)) >= {"sim-news", "sim-shop"}
    # Logs, spans (10% of threads, deterministically), cache stats and heartbeats arrived.
    assert LogLine.objects.filter(service="sim").count() >= report.tally.pages["ok"]
    assert Span.objects.filter(service="sim").exists()
    assert CacheStat.objects.filter(service="sim").exists()
    assert ScraperInstance.objects.filter(service="sim").count() == 2
    # Invalid posts are in the retry queue with their error, not lost and not stored.
    codes = set(RetryItem.objects.filter(dataset__name=POSTS).values_list("code", flat=True))
    assert "validation_error" in codes


def test_a_post_whose_subreddit_came_later_is_written_by_its_retry(ran: tuple[Report, World]):
    report, _ = ran
    waiting = RetryItem.objects.filter(
        dataset__name=POSTS, code="missing_reference", status="pending"
    )
    n = waiting.count()
    assert n > 0, report.text()
    stored = Record.objects.filter(dataset__name=POSTS).count()
    clock.freeze(clock.now() + dt.timedelta(hours=1))  # every backoff has passed
    try:
        retries_process_due()
    finally:
        clock.unfreeze()
    assert not waiting.exists()
    assert Record.objects.filter(dataset__name=POSTS).count() == stored + n
