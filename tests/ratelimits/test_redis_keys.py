"""After a run of every circuit and rate-limit scenario, no key of ours lives forever."""

from __future__ import annotations

import pytest
from django.conf import settings

from apps.accounts.services import api_key_create
from apps.circuits.models import Circuit
from apps.circuits.services import circuit_acquire, circuit_force, circuit_record
from apps.ratelimits import stats
from apps.ratelimits.models import Policy, PolicyOverride
from apps.ratelimits.services import ratelimit_acquire
from coreadmin.redis import connection

pytestmark = pytest.mark.django_db


def test_a_scan_after_every_scenario_finds_no_key_without_a_ttl(clock):
    Circuit.objects.create(
        name="all",
        failure_threshold=3,
        recovery_timeout_ms=1000,
        failure_rate_threshold=50,
        slow_call_rate_threshold=50,
        minimum_calls=2,
    )
    for outcome in ["success", "failure", "failure", "failure"]:
        circuit_acquire(name="all")
        circuit_record(name="all", outcome=outcome, duration_ms=10_000)
    clock.advance(seconds=2)
    circuit_acquire(name="all")
    circuit_record(name="all", outcome="success")
    circuit_force(name="all", state="forced_open", actor="t")
    circuit_force(name="all", state="closed", actor="t")
    premium = api_key_create(name="p").api_key
    policy = Policy.objects.create(key="all", limit=5, period_ms=1000, burst=2)
    Policy.objects.create(key="shadowed", limit=5, period_ms=1000, burst=1, shadow=True)
    PolicyOverride.objects.create(policy=policy, api_key=premium, limit=9, period_ms=1000, burst=3)
    for api_key_id in (1, premium.pk):
        for key in ("all", "shadowed"):
            for _ in range(4):
                ratelimit_acquire(key=key, cost=1, api_key_id=api_key_id, caller=f"c#{api_key_id}")
    assert stats.flush()
    client = connection()
    ours = list(client.scan_iter(match=settings.REDIS_KEY_PREFIX + "*", count=1000))
    assert len(ours) >= 8
    assert [k for k in ours if client.ttl(k) == -1] == []
