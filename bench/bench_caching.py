"""The server's two-tier cache, in process (no HTTP): L1 get/set next to a lock-guarded
cachetools.TTLCache, an L1 hit next to a plain django-redis get, and a 32-thread stampede
on one missing key through single-flight get_or_set next to plain get/compute/set.
Every figure is the median of several runs, alternatives measured in the same run."""

from __future__ import annotations

import os
import statistics
import threading
import time
from collections.abc import Callable

OPS = int(os.environ.get("BENCH_CACHING_OPS", "200000"))
RUNS = 5


def _setup() -> None:
    from bench.harness import BENCH_REDIS

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "coreadmin.settings")
    os.environ["REDIS_URL"] = BENCH_REDIS
    os.environ["REDIS_KEY_PREFIX"] = "bench:"
    import django

    django.setup()


def _ns_per_op(fn: Callable[[int], None], ops: int) -> float:
    runs = []
    for _ in range(RUNS):
        started = time.perf_counter()
        fn(ops)
        runs.append((time.perf_counter() - started) / ops * 1e9)
    return statistics.median(runs)


def _line(label: str, ours: float, theirs: float, other: str) -> str:
    verdict = "meets" if ours <= theirs * 1.05 else "MISSES"
    return (
        f"{label:<34} ours {ours:8.0f} ns/op   {other} {theirs:8.0f} ns/op   "
        f"ratio {theirs / ours:5.2f}x (target: not slower) -> {verdict}"
    )


def main() -> None:
    _setup()
    import cachetools
    from django.core.cache import caches

    from apps.caching.cache import LruTtl, TwoTierCache

    keys = [f"key-{i}" for i in range(1000)]
    ours = LruTtl(maxsize=2048, ttl=300)
    theirs: cachetools.TTLCache = cachetools.TTLCache(maxsize=2048, ttl=300)
    lock = threading.Lock()
    for k in keys:
        ours.set(k, k)
        theirs[k] = k

    def ours_get(n: int) -> None:
        get = ours.get
        for i in range(n):
            get(keys[i % 1000])

    def theirs_get(n: int) -> None:
        get = theirs.get
        for i in range(n):
            with lock:
                get(keys[i % 1000])

    def ours_set(n: int) -> None:
        put = ours.set
        for i in range(n):
            put(keys[i % 1000], i)

    def theirs_set(n: int) -> None:
        for i in range(n):
            with lock:
                theirs[keys[i % 1000]] = i

    print(f"L1, {OPS:,} ops on 1,000 keys, median of {RUNS} runs")
    print(
        _line(
            "L1 get (hit)", _ns_per_op(ours_get, OPS), _ns_per_op(theirs_get, OPS), "TTLCache+lock"
        )
    )
    print(
        _line(
            "L1 set (overwrite)",
            _ns_per_op(ours_set, OPS),
            _ns_per_op(theirs_set, OPS),
            "TTLCache+lock",
        )
    )

    small = LruTtl(maxsize=100, ttl=300)
    small_theirs: cachetools.TTLCache = cachetools.TTLCache(maxsize=100, ttl=300)

    def ours_evict(n: int) -> None:
        for i in range(n):
            small.set(i, i)

    def theirs_evict(n: int) -> None:
        for i in range(n):
            with lock:
                small_theirs[i] = i

    print(
        _line(
            "L1 set with LRU eviction",
            _ns_per_op(ours_evict, OPS),
            _ns_per_op(theirs_evict, OPS),
            "TTLCache+lock",
        )
    )

    two = TwoTierCache("bench", l1_ttl=300, register=False)
    redis_cache = caches["default"]
    for k in keys[:100]:
        two.set(k, {"value": k})
    n = OPS // 20

    def two_get(n: int) -> None:
        for i in range(n):
            two.get(keys[i % 100])

    def redis_get(n: int) -> None:
        for i in range(n):
            redis_cache.get("bench:" + keys[i % 100])

    ours_ns, redis_ns = _ns_per_op(two_get, n), _ns_per_op(redis_get, n)
    print(
        f"{'get, value in cache':<34} two-tier (L1 hit) {ours_ns:8.0f} ns/op   plain django-redis "
        f"{redis_ns:8.0f} ns/op   ratio {redis_ns / ours_ns:5.0f}x"
    )

    # Stampede: 32 threads miss one key at once; computing it takes 20 ms.
    def stampede(single_flight: bool) -> tuple[int, float]:
        computed = []

        def compute() -> str:
            computed.append(1)
            time.sleep(0.02)
            return "v"

        key = f"stampede-{time.perf_counter_ns()}"
        barrier = threading.Barrier(32)

        def worker() -> None:
            barrier.wait()
            if single_flight:
                two.get_or_set(key, compute)
            else:
                value = redis_cache.get(key)
                if value is None:
                    redis_cache.set(key, compute(), 60)

        threads = [threading.Thread(target=worker) for _ in range(32)]
        started = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        two.delete(key)
        redis_cache.delete(key)
        return len(computed), (time.perf_counter() - started) * 1000

    ours_runs = [stampede(True) for _ in range(RUNS)]
    plain_runs = [stampede(False) for _ in range(RUNS)]
    print(
        f"{'32-thread stampede, 20 ms compute':<34} single-flight computes "
        f"{statistics.median(c for c, _ in ours_runs):.0f}x in "
        f"{statistics.median(t for _, t in ours_runs):.0f} ms; plain get/compute/set computes "
        f"{statistics.median(c for c, _ in plain_runs):.0f}x in "
        f"{statistics.median(t for _, t in plain_runs):.0f} ms (median of {RUNS})"
    )
