"""Selector query counts do not grow with rows."""

from __future__ import annotations

import pytest

from apps.accounts.services import api_key_create
from apps.circuits.models import Circuit, CircuitEvent
from apps.circuits.selectors import circuit_events, circuit_list, circuit_panels, circuit_states
from apps.ratelimits.models import Policy, PolicyOverride
from apps.ratelimits.selectors import policy_list, policy_panels

pytestmark = pytest.mark.django_db


def test_policy_list_reads_policies_tiers_and_their_keys_in_two_queries(
    django_assert_num_queries,
):
    keys = [api_key_create(name=f"k{i}").api_key for i in range(3)]
    for i in range(10):
        policy = Policy.objects.create(key=f"p{i}", limit=1, period_ms=1000, burst=1)
        for key in keys:
            PolicyOverride.objects.create(
                policy=policy, api_key=key, limit=2, period_ms=1000, burst=2
            )
    with django_assert_num_queries(2):
        rows = [(p.key, [o.api_key.name for o in p.overrides.all()]) for p in policy_list()]
    assert len(rows) == 10 and rows[0][1] == ["k0", "k1", "k2"]


def test_policy_panels_read_no_database(django_assert_num_queries, clock):
    policies = [
        Policy.objects.create(key=f"p{i}", limit=1, period_ms=1000, burst=1) for i in range(5)
    ]
    with django_assert_num_queries(0):
        panels, degraded = policy_panels(policies)
    assert len(panels) == 5 and not degraded


def test_circuit_list_states_and_panels_cost_one_query(django_assert_num_queries, clock):
    for i in range(10):
        Circuit.objects.create(name=f"c{i}")
    with django_assert_num_queries(1):
        circuits = list(circuit_list())
        states, _ = circuit_states(circuits)
        panels, _ = circuit_panels(circuits)
    assert len(states) == len(panels) == 10


def test_circuit_events_are_newest_first_in_one_query(django_assert_num_queries, clock):
    import datetime as dt

    circuit = Circuit.objects.create(name="c")
    for i in range(5):
        CircuitEvent.objects.create(
            circuit=circuit,
            event_id=f"1-{i}",
            from_state="closed",
            to_state="open",
            reason=str(i),
            at=clock.now() + dt.timedelta(seconds=i),
        )
    with django_assert_num_queries(1):
        reasons = [e.reason for e in circuit_events(circuit=circuit)]
    assert reasons == ["4", "3", "2", "1", "0"]
