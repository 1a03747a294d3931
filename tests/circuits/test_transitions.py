"""The circuit state machine against real Redis and Postgres, with an injected clock."""

from __future__ import annotations

import pytest

from apps.circuits.models import Circuit, CircuitEvent
from apps.circuits.selectors import circuit_status
from apps.circuits.services import (
    circuit_acquire,
    circuit_events_flush,
    circuit_force,
    circuit_record,
    redis_keys,
)
from coreadmin.redis import connection

pytestmark = pytest.mark.django_db

NAME = "reddit-api"


def configure(**fields):
    defaults = {
        "failure_threshold": 3,
        "recovery_timeout_ms": 10_000,
        "half_open_max_calls": 2,
        "success_threshold": 2,
    }
    return Circuit.objects.create(name=NAME, **{**defaults, **fields})


def fail(times=1, duration_ms=5.0):
    status = None
    for _ in range(times):
        status = circuit_record(name=NAME, outcome="failure", duration_ms=duration_ms)
    return status


def succeed(times=1, duration_ms=5.0):
    status = None
    for _ in range(times):
        status = circuit_record(name=NAME, outcome="success", duration_ms=duration_ms)
    return status


def reach(state, clock):
    """Drives the circuit into ``state`` through the public operations."""
    if state == "closed":
        return
    if state == "forced_open" or state == "forced_closed":
        circuit_force(name=NAME, state=state, actor="test")
        return
    fail(3)
    if state == "half_open":
        clock.advance(ms=10_000)
        assert circuit_acquire(name=NAME).state == "half_open"


def transitions():
    return list(CircuitEvent.objects.order_by("at", "id").values_list("from_state", "to_state"))


# (state before, event, expected state after, expected acquire answer or None)
TABLE = [
    ("closed", "acquire", "closed", True),
    ("closed", "failure", "closed", None),
    ("closed", "success", "closed", None),
    ("closed", "failures_to_threshold", "open", None),
    ("open", "acquire", "open", False),
    ("open", "failure", "open", None),
    ("open", "success", "open", None),
    ("open", "acquire_after_timeout", "half_open", True),
    ("half_open", "acquire", "half_open", True),
    ("half_open", "acquire_beyond_cap", "half_open", False),
    ("half_open", "success", "half_open", None),
    ("half_open", "successes_to_threshold", "closed", None),
    ("half_open", "failure", "open", None),
    ("forced_open", "acquire", "forced_open", False),
    ("forced_open", "success", "forced_open", None),
    ("forced_open", "acquire_after_timeout", "forced_open", False),
    ("forced_closed", "acquire", "forced_closed", True),
    ("forced_closed", "failures_to_threshold", "forced_closed", None),
    ("forced_open", "reset", "closed", None),
    ("forced_closed", "reset", "closed", None),
    ("open", "reset", "closed", None),
    ("half_open", "force_open", "forced_open", None),
    ("closed", "force_closed", "forced_closed", None),
]


@pytest.mark.parametrize(("before", "event", "after", "allowed"), TABLE)
def test_transition_table(clock, before, event, after, allowed):
    configure()
    reach(before, clock)
    answer = None
    if event == "acquire":
        answer = circuit_acquire(name=NAME)
    elif event == "acquire_after_timeout":
        clock.advance(ms=10_000)
        answer = circuit_acquire(name=NAME)
    elif event == "acquire_beyond_cap":
        circuit_acquire(name=NAME)  # the second probe slot (reach() took the first)
        answer = circuit_acquire(name=NAME)
    elif event == "failure":
        fail()
    elif event == "success":
        succeed()
    elif event == "failures_to_threshold":
        fail(3)
    elif event == "successes_to_threshold":
        succeed(2)
    elif event == "reset":
        circuit_force(name=NAME, state="closed", actor="test")
    elif event == "force_open":
        circuit_force(name=NAME, state="forced_open", actor="test")
    elif event == "force_closed":
        circuit_force(name=NAME, state="forced_closed", actor="test")
    status = circuit_status(circuit=Circuit.objects.get())
    assert status.state == after
    if allowed is not None:
        assert answer.allowed is allowed
        assert answer.state == after
        assert answer.degraded is False
    if before != after:
        assert transitions()[-1] == (before, after)


def test_failures_below_the_threshold_are_counted_and_a_success_resets_them(clock):
    configure()
    assert fail(2).failure_count == 2
    assert succeed().failure_count == 0
    assert fail(2).state == "closed"


def test_open_circuit_says_how_long_until_it_admits_probes(clock):
    configure()
    fail(3)
    clock.advance(ms=4_000)
    answer = circuit_acquire(name=NAME)
    assert (answer.allowed, answer.retry_after_ms) == (False, 6_000.0)


def test_a_probe_that_never_reports_frees_its_slot_after_the_probe_timeout(clock, settings):
    settings.CIRCUIT_PROBE_TIMEOUT_MS = 2_000
    configure(half_open_max_calls=1)
    reach("half_open", clock)
    assert circuit_acquire(name=NAME).allowed is False
    clock.advance(ms=2_001)
    assert circuit_acquire(name=NAME).allowed is True


def test_each_transition_is_recorded_once_with_its_reason(clock):
    configure()
    fail(3)
    clock.advance(ms=10_000)
    circuit_acquire(name=NAME)
    succeed(2)
    events = list(CircuitEvent.objects.order_by("at", "id"))
    assert [(e.from_state, e.to_state) for e in events] == [
        ("closed", "open"),
        ("open", "half_open"),
        ("half_open", "closed"),
    ]
    assert events[0].reason == "3 consecutive failures (threshold 3)"
    assert "recovery timeout" in events[1].reason
    assert events[2].reason.startswith("2 successful probe")
    assert events[1].at.timestamp() - events[0].at.timestamp() == 10.0
    assert connection().llen(redis_keys(NAME)[4]) == 0
    assert circuit_events_flush() == 0
    assert CircuitEvent.objects.count() == 3


def test_failure_rate_over_the_window_opens_once_minimum_calls_are_seen(clock):
    configure(failure_threshold=0, failure_rate_threshold=50, minimum_calls=10)
    for _ in range(3):
        assert fail().state == "closed"  # 100% failed, but fewer than 10 calls
    succeed(6)
    # the 10th call: 4 of 10 failed, 40%
    assert fail().state == "closed"
    assert circuit_acquire(name=NAME).state == "closed"
    # the 11th: 5 of 11, 45%; the 12th: 6 of 12, 50% reaches the threshold
    assert fail().state == "closed"
    assert fail().state == "open"
    event = CircuitEvent.objects.get()
    assert event.reason == "failure rate 50.0% of 12 calls in the window (threshold 50%)"


def test_failures_older_than_the_window_no_longer_count(clock):
    configure(
        failure_threshold=0, failure_rate_threshold=50, minimum_calls=4, sliding_window_ms=10_000
    )
    fail(3)
    clock.advance(ms=11_000)
    succeed(3)
    assert fail().state == "closed"  # 1 failure of 4 calls in the window: 25%


def test_slow_calls_open_the_circuit_at_the_slow_call_rate(clock):
    configure(
        failure_threshold=0,
        slow_call_rate_threshold=60,
        slow_call_duration_ms=1_000,
        minimum_calls=5,
    )
    succeed(2, duration_ms=10)
    succeed(2, duration_ms=1_500)
    assert succeed(1, duration_ms=2_000).state == "open"
    assert "slow-call rate 60.0% of 5 calls" in CircuitEvent.objects.get().reason


def test_a_forced_state_outlives_the_redis_key(clock):
    configure()
    circuit_force(name=NAME, state="forced_open", actor="test")
    connection().delete(*redis_keys(NAME)[:4])
    answer = circuit_acquire(name=NAME)
    assert (answer.allowed, answer.state) == (False, "forced_open")


def test_forcing_is_audited(clock):
    from apps.accounts.models import AuditEntry

    configure()
    circuit_force(name=NAME, state="forced_open", actor="olivia", reason="site down")
    entry = AuditEntry.objects.get()
    assert (entry.actor, entry.action, entry.target) == (
        "olivia",
        "circuit.force",
        f"circuit {NAME}",
    )
    assert CircuitEvent.objects.get().reason == "forced by olivia: site down"


def test_a_circuit_is_created_with_the_settings_defaults_on_first_use(clock, settings):
    answer = circuit_acquire(name="new-one")
    circuit = Circuit.objects.get(name="new-one")
    assert answer.allowed is True
    assert circuit.failure_threshold == settings.CIRCUIT_DEFAULTS["failure_threshold"]
    assert circuit.recovery_timeout_ms == settings.CIRCUIT_DEFAULTS["recovery_timeout_ms"]


def test_every_circuit_key_has_a_ttl(clock):
    configure(failure_rate_threshold=50)
    fail(3)
    clock.advance(ms=10_000)
    circuit_acquire(name=NAME)
    client = connection()
    for key in redis_keys(NAME)[:4]:
        if client.exists(key):
            assert client.ttl(key) > 0, key


def test_a_transition_left_in_the_outbox_by_a_crashed_caller_is_written_once(clock):
    from apps.circuits.services import script, script_args

    circuit = configure(failure_threshold=1)
    # the script runs, but the caller "dies" before writing to Postgres
    script(redis_keys(NAME), script_args(circuit, "record", clock.ms(), "failure", "1.0"))
    assert CircuitEvent.objects.count() == 0
    assert connection().llen(redis_keys(NAME)[4]) == 1
    assert circuit_events_flush() == 1
    assert circuit_events_flush() == 0
    event = CircuitEvent.objects.get()
    assert (event.from_state, event.to_state, event.reason) == (
        "closed",
        "open",
        "1 consecutive failures (threshold 1)",
    )


def test_the_same_event_written_twice_is_stored_once(clock):
    from apps.circuits.services import _store_events

    circuit = configure()
    event = {"id": "1-1", "from_state": "closed", "to_state": "open", "reason": "r", "at": "1"}
    _store_events(circuit, [event], [b"x"])
    _store_events(circuit, [event], [b"x"])
    assert CircuitEvent.objects.count() == 1


def test_a_record_with_an_unknown_probe_id_frees_no_other_probes_slot(clock):
    configure(half_open_max_calls=1, success_threshold=2)
    fail(3)
    clock.advance(ms=10_000)
    probe = circuit_acquire(name=NAME)
    assert probe.allowed and probe.probe_id
    circuit_record(name=NAME, outcome="success", probe_id="not-a-probe")
    assert circuit_acquire(name=NAME).allowed is False  # the real probe still holds it
    circuit_record(name=NAME, outcome="success", probe_id=probe.probe_id)
    assert circuit_status(circuit=Circuit.objects.get()).state == "closed"
