"""Many callers racing on one circuit, in threads and in separate processes."""

from __future__ import annotations

import multiprocessing as mp
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connections

from apps.circuits.models import Circuit, CircuitEvent
from apps.circuits.services import (
    circuit_acquire,
    circuit_get_or_create,
    circuit_record,
    redis_keys,
)
from coreadmin.redis import connection

pytestmark = pytest.mark.django_db(transaction=True)

NAME = "race"


def _threads(n, fn):
    barrier = threading.Barrier(n)

    def run(_):
        barrier.wait()
        try:
            return fn()
        finally:
            connections.close_all()

    with ThreadPoolExecutor(n) as pool:
        return list(pool.map(run, range(n)))


def _process_body(barrier, queue, fn_name):
    try:
        barrier.wait(timeout=120)
        if fn_name == "fail":
            circuit_record(name=NAME, outcome="failure")
            queue.put(True)
        else:
            queue.put(circuit_acquire(name=NAME).allowed)
    except Exception as exc:  # reported to the parent, which fails the test with it
        queue.put(repr(exc))
    finally:
        connections.close_all()


def _processes(n, fn_name):
    # Cached before the fork, so only the child that makes a transition opens a
    # database connection (to write the event).
    circuit_get_or_create(name=NAME)
    ctx = mp.get_context("fork")
    barrier = ctx.Barrier(n)
    queue = ctx.Queue()
    connections.close_all()
    procs = [ctx.Process(target=_process_body, args=(barrier, queue, fn_name)) for _ in range(n)]
    for proc in procs:
        proc.start()
    results = [queue.get(timeout=300) for _ in procs]
    for proc in procs:
        proc.join(60)
        assert proc.exitcode == 0
    assert [r for r in results if not isinstance(r, bool)] == []
    return results


def test_fifty_threads_recording_failures_produce_exactly_one_open_event(clock):
    Circuit.objects.create(name=NAME, failure_threshold=5)
    _threads(50, lambda: circuit_record(name=NAME, outcome="failure"))
    events = CircuitEvent.objects.filter(circuit__name=NAME)
    assert list(events.values_list("from_state", "to_state")) == [("closed", "open")]
    assert connection().llen(redis_keys(NAME)[4]) == 0


def test_fifty_processes_recording_failures_produce_exactly_one_open_event(clock):
    Circuit.objects.create(name=NAME, failure_threshold=5)
    assert len(_processes(50, "fail")) == 50
    events = CircuitEvent.objects.filter(circuit__name=NAME)
    assert list(events.values_list("from_state", "to_state")) == [("closed", "open")]


def _to_half_open(clock, cap):
    Circuit.objects.create(
        name=NAME, failure_threshold=1, recovery_timeout_ms=1000, half_open_max_calls=cap
    )
    circuit_record(name=NAME, outcome="failure")
    clock.advance(ms=1000)


def test_fifty_threads_acquiring_in_half_open_get_exactly_the_probe_cap(clock):
    _to_half_open(clock, cap=3)
    results = _threads(50, lambda: circuit_acquire(name=NAME).allowed)
    assert results.count(True) == 3
    assert list(
        CircuitEvent.objects.order_by("at", "id").values_list("from_state", "to_state")
    ) == [("closed", "open"), ("open", "half_open")]


def test_fifty_processes_acquiring_in_half_open_get_exactly_the_probe_cap(clock):
    _to_half_open(clock, cap=4)
    results = _processes(50, "acquire")
    assert results.count(True) == 4
    assert CircuitEvent.objects.filter(to_state="half_open").count() == 1
