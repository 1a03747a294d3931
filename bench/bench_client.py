"""coreadmin_client: circuit_protected's per-call overhead on a closed circuit next to
pybreaker's in-memory breaker and a plain call; BatchWriter end-to-end records/s against
the server next to naive one-record POSTs. Same run, medians of repeated runs."""

from __future__ import annotations

import statistics
import tempfile
import time
import uuid
from collections.abc import Callable

import pybreaker
from coreadmin_client import Batcher, Client, Delivered, circuit_protected

from bench.harness import bench_server

CALLS = 200_000
RUNS = 5


def _ns_per_call(fn: Callable[[int], int], calls: int = CALLS) -> float:
    started = time.perf_counter_ns()
    for i in range(calls):
        fn(i)
    return (time.perf_counter_ns() - started) / calls


def bench_circuits(client: Client) -> None:
    def work(i: int) -> int:
        return i + 1

    breaker = pybreaker.CircuitBreaker(fail_max=5, reset_timeout=60)
    protected = circuit_protected("bench-search", client=client)(work)
    in_memory = breaker(work)
    # Interleave the three so background load hits them alike.
    for fn in (work, in_memory, protected):
        _ns_per_call(fn, 10_000)  # warm-up (the first acquire, caches)
    plain_ns, pyb_ns, ours_ns = [], [], []
    for _ in range(RUNS):
        plain_ns.append(_ns_per_call(work))
        pyb_ns.append(_ns_per_call(in_memory))
        ours_ns.append(_ns_per_call(protected))
    plain, pyb, ours = (statistics.median(x) for x in (plain_ns, pyb_ns, ours_ns))
    acquires = client.circuits.state("bench-search")
    print(f"plain call                    {plain / 1000:8.3f} us/call")
    print(
        f"pybreaker (in-memory)         {pyb / 1000:8.3f} us/call  "
        f"overhead {(pyb - plain) / 1000:.3f} us"
    )
    print(
        f"circuit_protected (closed)    {ours / 1000:8.3f} us/call  overhead "
        f"{(ours - plain) / 1000:.3f} us  (fleet state {acquires}, max_staleness "
        f"{client.max_staleness} s, refresh round trips included)"
    )
    verdict = "meets" if ours <= pyb else "MISSES"
    print(
        f"circuit_protected vs pybreaker: {ours / pyb:.2f}x the time per call -> {verdict} "
        f"target (not slower)  (median of {RUNS} interleaved runs of {CALLS} calls)"
    )


def bench_batch_writer(client: Client, dataset: str) -> None:
    batched, naive = [], []
    for run in range(3):
        records = 20_000
        with tempfile.TemporaryDirectory() as spool:
            writer = client.batch_writer(dataset, batch_size=500, interval=0.05, spool_dir=spool)
            started = time.perf_counter()
            for i in range(records):
                writer.write({"id": f"b{run}-{i}", "score": i})
            writer.flush()
            elapsed = time.perf_counter() - started
            counts = writer.counts
            writer.close()
        assert counts["written"] == records, counts
        batched.append(records / elapsed)
        one_by_one = 300
        started = time.perf_counter()
        for i in range(one_by_one):
            client.request(
                "POST",
                f"/api/v1/datasets/{dataset}/records",
                json={"batch_id": uuid.uuid4().hex, "records": [{"id": f"n{run}-{i}", "score": i}]},
            )
        naive.append(one_by_one / (time.perf_counter() - started))
    b, n = statistics.median(batched), statistics.median(naive)
    print(f"BatchWriter (500/batch)       {b:9.0f} records/s end to end (written and acknowledged)")
    print(f"naive one-record POSTs        {n:9.0f} records/s")
    print(f"BatchWriter vs naive: {b / n:.1f}x  (median of 3 runs)")


def bench_journal() -> None:
    """What the write-ahead journal costs write(): the time put() takes, no server in
    the way (the send acknowledges at once), memory only vs journal vs journal + fsync."""

    def ack(items: list[object], batch_id: str) -> Delivered:
        return Delivered(written=len(items))

    def per_record(spool: str | None, fsync: bool, n: int) -> float:
        batcher = Batcher(
            "bench",
            ack,
            batch_size=500,
            interval=0.05,
            max_queue=10 * n,
            spool_dir=spool,
            fsync=fsync,
        )
        started = time.perf_counter_ns()
        for i in range(n):
            batcher.put({"id": f"j{i}", "score": i, "title": "a scraped title of some length"})
        elapsed = (time.perf_counter_ns() - started) / n
        batcher.close()
        return elapsed

    results: dict[str, list[float]] = {"memory": [], "journal": [], "fsync": []}
    for _ in range(RUNS):
        with tempfile.TemporaryDirectory() as a, tempfile.TemporaryDirectory() as b:
            results["memory"].append(per_record(None, False, 50_000))
            results["journal"].append(per_record(a, False, 50_000))
            results["fsync"].append(per_record(b, True, 2_000))
    memory, journal, fsync = (statistics.median(results[k]) for k in ("memory", "journal", "fsync"))
    print(f"write(), no journal (memory)  {memory / 1000:8.2f} us/record")
    print(
        f"write(), journal              {journal / 1000:8.2f} us/record  "
        f"(+{(journal - memory) / 1000:.2f} us: survives SIGKILL)"
    )
    print(
        f"write(), journal fsync=True   {fsync / 1000:8.2f} us/record  "
        f"(+{(fsync - memory) / 1000:.2f} us: survives power loss)  (median of {RUNS} runs)"
    )


def main() -> None:
    bench_journal()
    with bench_server() as server:
        admin_key = server.api_key("admin")
        key = server.api_key("scraper")
        dataset = "bench_client_" + uuid.uuid4().hex[:6]
        with Client(server.base_url, admin_key, make_default=False) as admin:
            admin.request("PUT", "/api/v1/circuits/bench-search", json={"failure_threshold": 5})
            admin.request(
                "PUT",
                f"/api/v1/datasets/{dataset}",
                json={
                    "key_fields": ["id"],
                    "fields": {
                        "id": {"type": "string", "required": True},
                        "score": {"type": "integer"},
                    },
                },
            )
        with Client(server.base_url, key, service="bench") as client:
            bench_circuits(client)
            bench_batch_writer(client, dataset)
