from __future__ import annotations

import asyncio
import threading
import time

import pytest

from apps.caching.cache import LruTtl, TwoTierCache


def _run_all(threads: list[threading.Thread]) -> None:
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


class FakeTimer:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_l1_evicts_the_least_recently_used_entry_and_counts_it():
    l1 = LruTtl(maxsize=2, ttl=60)
    l1.set("a", 1)
    l1.set("b", 2)
    assert l1.get("a") == 1  # a is now the most recent
    l1.set("c", 3)
    assert l1.get("b") is None
    assert (l1.get("a"), l1.get("c")) == (1, 3)
    assert l1.evictions == 1
    assert (l1.hits, l1.misses) == (3, 1)


def test_l1_entries_expire_after_their_ttl():
    timer = FakeTimer()
    l1 = LruTtl(maxsize=10, ttl=5, timer=timer)
    l1.set("k", "v")
    l1.set("short", "v", ttl=1)
    timer.now += 2
    assert l1.get("k") == "v"
    assert l1.get("short", "gone") == "gone"
    timer.now += 4
    assert l1.get("k") is None
    assert l1.expired == 2


@pytest.mark.django_db
def test_a_value_set_in_one_process_is_read_through_l2_by_another():
    writer = TwoTierCache("t-l2", l1_ttl=5, register=False)
    reader = TwoTierCache("t-l2", l1_ttl=5, register=False)  # another process: its own, empty L1
    writer.set("user:1", {"name": "ada"})
    assert reader.get("user:1") == {"name": "ada"}
    assert reader.stats()["l2_hits"] == 1
    assert reader.get("user:1") == {"name": "ada"}
    assert reader.stats()["l1_hits"] == 1
    writer.delete("user:1")
    assert writer.get("user:1", "none") == "none"
    assert writer.stats()["misses"] == 1


@pytest.mark.django_db(transaction=True)
def test_single_flight_under_32_threads_computes_once():
    cache = TwoTierCache("t-flight", register=False)
    calls = []
    start = threading.Barrier(32)
    results = []

    def compute():
        calls.append(1)
        time.sleep(0.05)  # a slow computation: every other thread arrives meanwhile
        return "value"

    def worker():
        start.wait()
        results.append(cache.get_or_set("hot", compute))

    _run_all([threading.Thread(target=worker) for _ in range(32)])
    assert len(calls) == 1
    assert results == ["value"] * 32
    assert cache.stats()["computes"] == 1


@pytest.mark.django_db(transaction=True)
def test_waiting_threads_see_the_leaders_exception_and_the_next_call_retries():
    cache = TwoTierCache("t-flight-error", register=False)
    start = threading.Barrier(8)
    errors = []

    def compute():
        time.sleep(0.05)
        raise RuntimeError("backend down")

    def worker():
        start.wait()
        try:
            cache.get_or_set("k", compute)
        except RuntimeError as exc:
            errors.append(str(exc))

    _run_all([threading.Thread(target=worker) for _ in range(8)])
    assert errors == ["backend down"] * 8
    assert cache.get_or_set("k", lambda: "ok") == "ok"


@pytest.mark.django_db(transaction=True)
def test_async_get_or_set_awaits_one_computation_for_concurrent_coroutines():
    cache = TwoTierCache("t-async", register=False)
    calls = []

    async def compute():
        calls.append(1)
        await asyncio.sleep(0.02)
        return 42

    async def main():
        return await asyncio.gather(*[cache.aget_or_set("answer", compute) for _ in range(32)])

    assert asyncio.run(main()) == [42] * 32
    assert len(calls) == 1
    assert asyncio.run(cache.aget("answer")) == 42


@pytest.mark.django_db
def test_counter_deltas_are_what_changed_since_the_last_publish():
    cache = TwoTierCache("t-deltas", register=False)
    cache.get_or_set("a", lambda: 1)
    cache.get_or_set("a", lambda: 1)
    first = cache.take_deltas()
    assert (first["l1_hits"], first["misses"], first["computes"]) == (1, 1, 1)
    cache.get("a")
    second = cache.take_deltas()
    assert (second["l1_hits"], second["misses"], second["computes"]) == (1, 0, 0)


@pytest.mark.django_db(transaction=True)
def test_a_cancelled_async_leader_does_not_leave_its_waiters_hanging():
    cache = TwoTierCache("t-async-cancel", register=False)

    async def slow():
        await asyncio.sleep(10)
        return 1

    async def main():
        leader = asyncio.create_task(cache.aget_or_set("k", slow))
        await asyncio.sleep(0.01)
        waiter = asyncio.create_task(cache.aget_or_set("k", slow))
        await asyncio.sleep(0.01)
        leader.cancel()
        results = await asyncio.gather(leader, waiter, return_exceptions=True)
        assert all(isinstance(r, asyncio.CancelledError) for r in results)
        return await cache.aget_or_set("k", lambda: asyncio.sleep(0, result=2))

    assert asyncio.run(asyncio.wait_for(main(), 5)) == 2


@pytest.mark.django_db(transaction=True)
def test_single_flight_across_processes_computes_once_through_the_redis_lock():
    # Two caches of one namespace with their own L1 and flights: two web processes.
    first = TwoTierCache("t-cross", register=False)
    second = TwoTierCache("t-cross", register=False)
    calls = []
    start = threading.Barrier(16)
    results = []

    def compute():
        calls.append(1)
        time.sleep(0.1)
        return "shared"

    def worker(cache):
        start.wait()
        results.append(cache.get_or_set("hot", compute))

    _run_all([threading.Thread(target=worker, args=(c,)) for c in [first, second] * 8])
    assert len(calls) == 1
    assert results == ["shared"] * 16
