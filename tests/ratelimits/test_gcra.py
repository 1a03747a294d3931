"""GCRA against real Redis, with the injected clock."""

from __future__ import annotations

import multiprocessing as mp
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connections

from apps.accounts.services import api_key_create
from apps.ratelimits import stats
from apps.ratelimits.models import Policy, PolicyOverride
from apps.ratelimits.services import policy_resolve, ratelimit_acquire
from coreadmin.redis import connection, key

pytestmark = pytest.mark.django_db


def acquire(cost=1, api_key_id=1, caller="scraper#1", policy="reddit"):
    return ratelimit_acquire(key=policy, cost=cost, api_key_id=api_key_id, caller=caller)


def test_a_full_bucket_grants_burst_then_denies_with_the_time_to_wait(clock):
    Policy.objects.create(key="reddit", limit=60, period_ms=60_000, burst=10)
    answers = [acquire() for _ in range(11)]
    assert [a.allowed for a in answers] == [True] * 10 + [False]
    assert [a.remaining for a in answers[:3]] == [9, 8, 7]
    assert answers[9].remaining == 0
    assert answers[10].retry_after_ms == 1000.0
    assert answers[10].reset_after_ms == 10_000.0
    assert (answers[0].policy, answers[0].tier, answers[0].degraded) == ("reddit", "default", False)


def test_refill_follows_the_injected_clock(clock):
    Policy.objects.create(key="reddit", limit=60, period_ms=60_000, burst=10)
    for _ in range(10):
        assert acquire().allowed
    assert not acquire().allowed
    clock.advance(ms=999)
    assert not acquire().allowed
    clock.advance(ms=1)
    assert acquire().allowed
    assert not acquire().allowed
    clock.advance(seconds=3)
    assert [acquire().allowed for _ in range(4)] == [True, True, True, False]
    clock.advance(seconds=60)
    assert acquire().remaining == 9  # full again: never more than burst


def test_weighted_cost_takes_that_many_tokens(clock):
    Policy.objects.create(key="reddit", limit=10, period_ms=1_000, burst=10)
    assert acquire(cost=7).remaining == 3
    denied = acquire(cost=4)
    assert (denied.allowed, denied.remaining, denied.retry_after_ms) == (False, 3, 100.0)
    assert acquire(cost=3).allowed


def test_a_cost_above_the_burst_is_refused_as_invalid(clock):
    from coreadmin.errors import ApiError

    Policy.objects.create(key="reddit", limit=10, period_ms=1_000, burst=5)
    with pytest.raises(ApiError) as exc:
        acquire(cost=6)
    assert exc.value.status == 422


def test_an_api_key_override_gets_its_own_bigger_bucket_and_names_its_tier(clock):
    premium = api_key_create(name="premium").api_key
    policy = Policy.objects.create(key="reddit", limit=10, period_ms=60_000, burst=2)
    PolicyOverride.objects.create(
        policy=policy, api_key=premium, tier="premium", limit=100, period_ms=60_000, burst=5
    )
    plain = [acquire(api_key_id=999).allowed for _ in range(3)]
    rich = [acquire(api_key_id=premium.pk) for _ in range(6)]
    assert plain == [True, True, False]
    assert [a.allowed for a in rich] == [True] * 5 + [False]
    assert (rich[0].policy, rich[0].tier, rich[0].burst) == ("reddit", "premium", 5)


def test_shadow_mode_never_denies_but_counts_what_it_would_deny(clock):
    Policy.objects.create(key="trial", limit=60, period_ms=60_000, burst=3, shadow=True)
    answers = [acquire(policy="trial", caller="noisy#7") for _ in range(10)]
    assert all(a.allowed for a in answers)
    assert [a.would_allow for a in answers] == [True] * 3 + [False] * 7
    assert all(a.shadow for a in answers)
    assert stats.flush()
    hour = round(clock.time() * 1_000_000) // 3_600_000_000
    assert connection().zscore(key("rl", "trial", "shadow", hour), "noisy#7") == 7
    assert not connection().exists(key("rl", "trial", "denied", hour))


def test_an_unknown_policy_is_not_found(clock):
    from coreadmin.errors import NotFound

    with pytest.raises(NotFound):
        acquire(policy="nope")


def test_bucket_keys_outlive_the_debt_and_expire_within_one_full_burst(clock):
    Policy.objects.create(key="reddit", limit=60, period_ms=60_000, burst=10)
    acquire(cost=3)
    ttl_ms = connection().pttl(key("rl", "reddit"))
    # Full again 3 s later: the key must live at least that long (or the bucket would
    # forget its debt and over-grant), and lives at most T * burst = 10 s (one constant
    # per policy, passed to the script: no TTL arithmetic in Redis).
    assert 3_000 < ttl_ms <= 10_001


def test_the_stored_tat_is_the_exact_microsecond_integer(clock):
    """The script hands Redis the TAT as a Lua number (no string.format): Redis must
    write it with every digit (16 here; Lua's own tostring would keep 14)."""
    Policy.objects.create(key="reddit", limit=7, period_ms=1_000, burst=7)
    now_us = round(clock.time() * 1_000_000)
    assert now_us > 10**15
    acquire(cost=1)
    t = -(-1_000_000 // 7)  # the emission interval, rounded up
    assert connection().get(key("rl", "reddit")) == str(now_us + t).encode()


def test_a_thousand_concurrent_threads_get_exactly_the_burst(clock, transactional_db):
    Policy.objects.create(key="reddit", limit=100, period_ms=60_000, burst=100)
    barrier = threading.Barrier(50)

    def run(i):
        if i < 50:
            barrier.wait()
        try:
            return acquire().allowed
        finally:
            connections.close_all()

    with ThreadPoolExecutor(50) as pool:
        results = list(pool.map(run, range(1000)))
    assert results.count(True) == 100


def _process_body(barrier, queue, n):
    try:
        barrier.wait(timeout=120)
        queue.put(sum(acquire(policy="shared").allowed for _ in range(n)))
    except Exception as exc:  # reported to the parent, which fails the test with it
        queue.put(repr(exc))
    finally:
        connections.close_all()


def test_a_thousand_acquires_from_separate_processes_grant_exactly_the_burst(
    clock, transactional_db
):
    Policy.objects.create(key="shared", limit=7, period_ms=60_000, burst=137)
    policy_resolve(key="shared")  # cached before the fork: the children need no database
    ctx = mp.get_context("fork")
    barrier = ctx.Barrier(20)
    queue = ctx.Queue()
    connections.close_all()
    procs = [ctx.Process(target=_process_body, args=(barrier, queue, 50)) for _ in range(20)]
    for proc in procs:
        proc.start()
    results = [queue.get(timeout=300) for _ in procs]
    for proc in procs:
        proc.join(60)
    assert [r for r in results if not isinstance(r, int)] == []
    assert sum(results) == 137


def test_weighted_concurrent_acquires_never_overgrant_tokens(clock, transactional_db):
    Policy.objects.create(key="reddit", limit=7, period_ms=60_000, burst=100)

    def run(i):
        cost = 1 + i % 5
        try:
            return cost if acquire(cost=cost).allowed else 0
        finally:
            connections.close_all()

    with ThreadPoolExecutor(32) as pool:
        tokens = sum(pool.map(run, range(500)))
    assert 96 <= tokens <= 100
