"""Decision counts kept per process and flushed in one pipeline: exact, never lost silently."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connections

from apps.ratelimits import stats
from apps.ratelimits.models import Policy
from apps.ratelimits.services import ratelimit_acquire
from coreadmin.redis import connection, key
from tests.circuits.faults import caches_for, closed_port_url

pytestmark = pytest.mark.django_db


def counts(policy, clock):
    minute = round(clock.time() * 1_000_000) // 60_000_000
    raw = connection().hgetall(key("rl", policy, "stats"))
    return {k.decode()[0]: int(v) for k, v in raw.items() if k.decode()[1:] == str(minute)}


def test_a_thousand_concurrent_decisions_are_counted_exactly(clock, transactional_db):
    Policy.objects.create(key="reddit", limit=100, period_ms=60_000, burst=100)

    def run(_i):
        try:
            return ratelimit_acquire(key="reddit", api_key_id=1, caller="c#1").allowed
        finally:
            connections.close_all()

    with ThreadPoolExecutor(50) as pool:
        results = list(pool.map(run, range(1000)))
    assert results.count(True) == 100
    assert stats.flush() and stats.pending() == 0
    assert counts("reddit", clock) == {"g": 100, "d": 900}
    hour = round(clock.time() * 1_000_000) // 3_600_000_000
    assert connection().zscore(key("rl", "reddit", "denied", hour), "c#1") == 900


def test_a_failed_flush_keeps_the_counts_for_the_next_one(clock, settings):
    Policy.objects.create(key="reddit", limit=60, period_ms=60_000, burst=2)
    for _ in range(5):
        ratelimit_acquire(key="reddit", api_key_id=1, caller="c#1")
    good = settings.CACHES
    settings.CACHES = caches_for(closed_port_url(), good)
    assert stats.flush() is False and stats.pending() == 5 + 3
    settings.CACHES = good
    assert stats.flush() and stats.pending() == 0
    assert counts("reddit", clock) == {"g": 2, "d": 3}


def test_beyond_the_bound_counts_are_dropped_and_counted_in_metrics(clock, settings, client):
    def dropped():
        for line in client.get("/metrics").content.decode().splitlines():
            if line.startswith("coreadmin_ratelimit_stats_dropped_total "):
                return float(line.split()[-1])
        return 0.0

    settings.RATELIMIT_STATS_MAX_PENDING = 2
    before = dropped()
    for minute in range(4):  # four distinct minute counters, room for two
        stats.record(
            policy="p", shadow=False, would_allow=True, caller="c", now_us=minute * 60_000_000
        )
    assert stats.pending() == 2
    assert dropped() == before + 2
