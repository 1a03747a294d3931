"""Closed-loop load straight at Redis: N client processes x M threads, each with its own
connection, calling ``op()`` as fast as answers come back for ``duration`` seconds.

    counts = run_clients(lambda: make_op(), processes=4, threads=8, duration=3)
    counts.rate, counts.tally  # calls/s, {result: how many}

``make_op`` runs once per thread inside the worker (after fork), so every thread builds
its own client; ``op()`` returns something hashable that is tallied (granted or not).
"""

from __future__ import annotations

import multiprocessing as mp
import statistics
import threading
import time
from collections import Counter
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any

Op = Callable[[], Hashable]


@dataclass
class Counts:
    calls: int
    seconds: float
    tally: Counter

    @property
    def rate(self) -> float:
        return self.calls / self.seconds


def _worker(
    make_op: Callable[[], Op], threads: int, start_at: float, stop_at: float, out: Any
) -> None:
    tally: Counter = Counter()
    lock = threading.Lock()

    def run() -> None:
        op = make_op()
        local: Counter = Counter()
        while time.time() < start_at:
            time.sleep(0.001)
        while time.time() < stop_at:
            local[op()] += 1
        with lock:
            tally.update(local)

    pool = [threading.Thread(target=run) for _ in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    out.put(dict(tally))


def run_clients(
    make_op: Callable[[], Op], *, processes: int = 4, threads: int = 8, duration: float = 3.0
) -> Counts:
    ctx = mp.get_context("fork")
    queue = ctx.Queue()
    start_at = time.time() + 0.5
    stop_at = start_at + duration
    procs = [
        ctx.Process(target=_worker, args=(make_op, threads, start_at, stop_at, queue))
        for _ in range(processes)
    ]
    for proc in procs:
        proc.start()
    tally: Counter = Counter()
    for _ in procs:
        tally.update(queue.get())
    for proc in procs:
        proc.join()
    return Counts(sum(tally.values()), duration, tally)


def django_settings() -> None:
    """Loads coreadmin's settings (production mode, the bench database and Redis) in this
    process, for benchmarks that call our code directly; leaves os.environ as it was."""
    import os

    import django
    from django.conf import settings

    from bench.harness import bench_env

    if settings.configured:
        return
    saved = dict(os.environ)
    os.environ.update(bench_env(DJANGO_SETTINGS_MODULE="coreadmin.settings"))
    try:
        django.setup()
    finally:
        os.environ.clear()
        os.environ.update(saved)


def median_rate(runs: list[Counts]) -> float:
    return statistics.median(r.rate for r in runs)
