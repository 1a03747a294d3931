"""Open-loop load: requests arrive at a fixed rate whether or not earlier ones finished.

Closed-loop generators (bench/harness.py) slow down when the server does and so hide
queueing ("coordinated omission"). Here each request has a scheduled arrival time and its
latency is measured from that time, so a stalled server shows up as growing latency.
Arrivals are spread over worker processes; each process has a pool of threads, one
keep-alive connection each, that take due requests from a queue.
"""

from __future__ import annotations

import http.client
import multiprocessing as mp
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

Request = tuple[str, str, str, bytes | None, dict[str, str]]  # label, method, path, body, headers
RequestFactory = Callable[[int], Request]


@dataclass
class LabelStats:
    latencies_ms: list[float] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)

    def merge(self, other: LabelStats) -> None:
        self.latencies_ms.extend(other.latencies_ms)
        for status, count in other.statuses.items():
            self.statuses[status] = self.statuses.get(status, 0) + count

    @property
    def count(self) -> int:
        return len(self.latencies_ms)

    @property
    def errors(self) -> int:
        return sum(c for s, c in self.statuses.items() if s >= 500)

    def pct(self, q: float) -> float:
        data = sorted(self.latencies_ms)
        if not data:
            return float("nan")
        return data[min(len(data) - 1, int(q / 100 * len(data)))]


def _process(
    host: str,
    port: int,
    factory: RequestFactory,
    rate: float,
    duration: float,
    threads: int,
    start_at: float,
    offset: int,
    stride: int,
    out: Any,
) -> None:
    due: queue.Queue[tuple[float, Request] | None] = queue.Queue()
    stats: dict[str, LabelStats] = {}
    lock = threading.Lock()

    def worker() -> None:
        conn = http.client.HTTPConnection(host, port, timeout=30)
        local: dict[str, LabelStats] = {}
        while True:
            item = due.get()
            if item is None:
                break
            scheduled, (label, method, path, body, headers) = item
            try:
                conn.request(method, path, body=body, headers=headers)
                response = conn.getresponse()
                response.read()
                status = response.status
            except (OSError, http.client.HTTPException):
                conn.close()
                conn = http.client.HTTPConnection(host, port, timeout=30)
                status = 599
            entry = local.setdefault(label, LabelStats())
            entry.latencies_ms.append((time.time() - scheduled) * 1000)
            entry.statuses[status] = entry.statuses.get(status, 0) + 1
        conn.close()
        with lock:
            for label, entry in local.items():
                stats.setdefault(label, LabelStats()).merge(entry)

    pool = [threading.Thread(target=worker, daemon=True) for _ in range(threads)]
    for thread in pool:
        thread.start()
    interval = 1.0 / rate
    k = 0
    while True:
        scheduled = start_at + k * interval
        if scheduled >= start_at + duration:
            break
        delay = scheduled - time.time()
        if delay > 0:
            time.sleep(delay)
        due.put((scheduled, factory(offset + k * stride)))
        k += 1
    for _ in pool:
        due.put(None)
    for thread in pool:
        thread.join()
    out.put({label: (s.latencies_ms, s.statuses) for label, s in stats.items()})


def open_loop(
    host: str,
    port: int,
    factory: RequestFactory,
    *,
    rate: float,
    duration: float,
    processes: int = 2,
    threads_per_process: int = 32,
) -> dict[str, LabelStats]:
    """Sends ``rate`` requests/s for ``duration`` s; returns stats per request label."""
    ctx = mp.get_context("fork")
    out = ctx.Queue()
    start_at = time.time() + 0.5
    procs = [
        ctx.Process(
            target=_process,
            args=(
                host,
                port,
                factory,
                rate / processes,
                duration,
                threads_per_process,
                start_at,
                p,
                processes,
                out,
            ),
        )
        for p in range(processes)
    ]
    for proc in procs:
        proc.start()
    merged: dict[str, LabelStats] = {}
    for _ in procs:
        for label, (latencies, statuses) in out.get().items():
            merged.setdefault(label, LabelStats()).merge(LabelStats(latencies, statuses))
    for proc in procs:
        proc.join()
    return merged
