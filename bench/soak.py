"""`make soak MINUTES=N`: open-loop load at 70% of the measured peak across the main
scraper endpoints, with a report of what held and what drifted.

1. Starts the production-like stack from bench/harness.py (gunicorn in production mode on
   the bench database) plus a Celery worker, and creates what the load needs through the
   API itself (a dataset pair, a circuit, a rate-limit policy, a proxy pool).
2. Measures the peak of the endpoint mix closed-loop (median of 3 short runs).
3. Sends the same mix open-loop (fixed arrival times, latency measured from the scheduled
   time, so a stalled server shows as latency instead of a slower generator) at
   SOAK_SHARE (default 0.70) of that peak for MINUTES.
4. Samples every few seconds: gunicorn worker RSS, Postgres connections, Redis memory,
   Celery queue length, retry-queue pending and dead.
5. Reconciles the dataset: records acknowledged by a 200 must equal stored + queued + dead.

The report is printed and written to test-artifacts/soak-<time>.md.
"""

from __future__ import annotations

import contextlib
import os
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
import psutil

from bench.harness import ROOT, BenchServer, Scenario, bench_server, measure
from bench.openloop import LabelStats, Request, open_loop

PARENTS = "soak_subreddits"
RECORDS_PER_BATCH = 20
SAMPLE_EVERY_S = 5.0


@dataclass
class Mix:
    """The endpoint mix: (label, method, path, body-maker, weight)."""

    key: str
    run_id: str
    dataset: str

    def endpoints(self) -> list[tuple[str, str, str, Any, int]]:
        return [
            ("whoami", "GET", "/api/v1/whoami", None, 1),
            ("lease", "POST", "/api/v1/proxies/lease", self._lease, 3),
            ("circuit acquire", "POST", "/api/v1/circuits/soak-target/acquire", None, 3),
            ("circuit record", "POST", "/api/v1/circuits/soak-target/record", self._record, 3),
            ("ratelimit acquire", "POST", "/api/v1/ratelimits/soak/acquire", {"cost": 1}, 3),
            ("records", "POST", f"/api/v1/datasets/{self.dataset}/records", self._records, 2),
            ("logs", "POST", "/api/v1/logs", self._logs, 2),
            ("spans", "POST", "/api/v1/spans", self._spans, 2),
            ("heartbeat", "POST", "/api/v1/fleet/heartbeat", self._heartbeat, 1),
        ]

    def _lease(self, i: int) -> Any:
        return {"service": "soak", "target": f"site{i % 7}.test"}

    def _record(self, i: int) -> Any:
        return {"outcome": "success", "duration_ms": 12.0}

    def _records(self, i: int) -> Any:
        records = []
        for j in range(RECORDS_PER_BATCH):
            n = i * RECORDS_PER_BATCH + j
            record: dict[str, Any] = {"id": f"{self.run_id}-{n}", "score": n, "over_18": False}
            # One in 20 names a parent that does not exist (queued, missing_reference) and
            # one in 20 is invalid (queued, validation_error); the rest are written.
            record["subreddit"] = "missing" if j == 3 else f"sub{n % 10}"
            if j == 7:
                record["score"] = "not a number"
            records.append(record)
        return {"batch_id": f"{self.run_id}-b{i}", "records": records}

    def _logs(self, i: int) -> Any:
        return {
            "records": [
                {
                    "ts": datetime.now(UTC).isoformat(),
                    "level": "info" if k % 5 else "error",
                    "logger": "soak",
                    "message": f"page {i}-{k} fetched for user{k}@example.com",
                    "service": "soak",
                    "thread_id": f"t{i}",
                    "context": {"n": k},
                }
                for k in range(10)
            ]
        }

    def _spans(self, i: int) -> Any:
        now = datetime.now(UTC).isoformat()
        return {
            "spans": [
                {
                    "thread_id": f"t{i}",
                    "stage": stage,
                    "name": stage,
                    "parent_stage": parent,
                    "service": "soak",
                    "started_at": now,
                    "duration_ms": 5.0 + (i % 50),
                    "status": "ok",
                }
                for stage, parent in (("1_FETCH", None), ("1.1_PARSE", "1_FETCH"))
            ]
        }

    def _heartbeat(self, i: int) -> Any:
        return {
            "instance": f"soak-{i % 8}",
            "service": "soak",
            "version": "soak",
            "memory_mb": 100.0,
            "extra": {},
        }

    def factory(self) -> Any:
        table: list[tuple[str, str, str, Any]] = []
        for label, method, path, body, weight in self.endpoints():
            table.extend([(label, method, path, body)] * weight)
        headers = {"Content-Type": "application/json", "X-API-Key": self.key}

        def make(i: int) -> Request:
            label, method, path, body = table[i % len(table)]
            # i itself, not the round number: an endpoint of weight 2 has two slots per
            # round, and one number for both sent every records batch twice under one
            # batch_id (a replay the reconciliation counted as a second acknowledgement).
            payload = body(i) if callable(body) else body
            return (
                label,
                method,
                path,
                (orjson.dumps(payload) if payload is not None else None),
                headers,
            )

        return make


def prepare(server: BenchServer, admin: str, datasets: list[str]) -> None:
    def ok(method: str, path: str, body: Any) -> Any:
        status, data = server.request(method, path, body, admin)
        if status >= 300:
            raise RuntimeError(f"{method} {path} -> {status} {data}")
        return data

    ok(
        "PUT",
        f"/api/v1/datasets/{PARENTS}",
        {"key_fields": ["name"], "fields": {"name": {"type": "string", "required": True}}},
    )
    for name in datasets:  # one per run and phase, so the reconciliation is exact
        ok(
            "PUT",
            f"/api/v1/datasets/{name}",
            {
                "key_fields": ["id"],
                "fields": {
                    "id": {"type": "string", "required": True},
                    "score": {"type": "integer"},
                    "over18": {"type": "boolean", "source": "over_18"},
                    "subreddit": {"type": "string", "references": f"{PARENTS}.name"},
                },
            },
        )
    ok(
        "POST",
        f"/api/v1/datasets/{PARENTS}/records",
        {"records": [{"name": f"sub{n}"} for n in range(10)]},
    )
    ok("PUT", "/api/v1/circuits/soak-target", {"failure_threshold": 1000})
    ok(
        "PUT",
        "/api/v1/ratelimits/soak",
        {"limit": 10_000_000, "period_ms": 1000, "burst": 1_000_000},
    )
    existing = ok("GET", "/api/v1/proxies?service=soak", None)["count"]
    for n in range(existing, 50):
        ok(
            "POST",
            "/api/v1/proxies",
            {
                "url": f"http://u{n}:p{n}@127.0.0.1:{20000 + n}",
                "service": "soak",
                "country": "US",
                "tags": [],
            },
        )


def _sql(server: BenchServer, query: str) -> Any:
    import psycopg

    with psycopg.connect(server.env["DATABASE_URL"], autocommit=True) as conn:
        row = conn.execute(query).fetchone()
        return row[0] if row else None


def _redis(server: BenchServer) -> Any:
    import redis

    return redis.Redis.from_url(server.env["REDIS_URL"])


def _retry_counts(server: BenchServer, admin: str, dataset: str) -> dict[str, int]:
    counts = {}
    for status in ("pending", "dead"):
        code, data = server.request(
            "GET", f"/api/v1/retries?dataset={dataset}&status={status}&limit=1", None, admin
        )
        counts[status] = data["count"] if code == 200 else -1
    return counts


def sample(server: BenchServer, admin: str, master_pid: int, dataset: str) -> dict[str, Any]:
    master = psutil.Process(master_pid)
    rss = [c.memory_info().rss / 2**20 for c in master.children()]
    db = server.env["DATABASE_URL"].rsplit("/", 1)[1]
    client = _redis(server)
    return {
        "t": time.time(),
        "worker_rss_mb": round(statistics.mean(rss), 1) if rss else 0.0,
        "db_connections": _sql(
            server, f"SELECT count(*) FROM pg_stat_activity WHERE datname = '{db}'"
        ),
        "redis_used_mb": round(client.info("memory")["used_memory"] / 2**20, 1),
        "celery_queue": client.llen("bench:celery:celery"),
        **_retry_counts(server, admin, dataset),
    }


@contextlib.contextmanager
def celery_worker(server: BenchServer) -> Iterator[None]:
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "coreadmin",
            "worker",
            "--beat",
            "--concurrency",
            "2",
            "--loglevel",
            "WARNING",
        ],
        cwd=ROOT,
        env=server.env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield
    finally:
        process.terminate()
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()


def _gunicorn_master(server: BenchServer) -> int:
    """The gunicorn master: from any process listening on the port (workers may hold
    the socket without the master showing), up the parents while they are gunicorn."""
    pids = [
        c.pid
        for c in psutil.net_connections("tcp")
        if c.laddr and c.laddr.port == server.port and c.status == psutil.CONN_LISTEN and c.pid
    ]
    if not pids:
        raise RuntimeError("gunicorn master not found")
    proc = psutil.Process(pids[0])
    while (parent := proc.parent()) is not None and "gunicorn" in " ".join(parent.cmdline()):
        proc = parent
    return proc.pid


def report(
    minutes: float,
    peak: float,
    target: float,
    stats: dict[str, LabelStats],
    samples: list[dict[str, Any]],
    reconciliation: dict[str, Any],
    seconds: float,
) -> str:
    total = sum(s.count for s in stats.values())
    lines = [
        f"# Soak report {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        "",
        f"Machine: {os.cpu_count()} cores. Duration {minutes:g} min. Peak (closed loop, "
        f"median of 3) {peak:.0f} req/s; target {target:.0f} req/s ({target / peak:.0%}); achieved "
        f"{total / seconds:.0f} req/s ({total / seconds / target:.0%} of target).",
        "",
        "| endpoint | requests | 5xx/errors | non-2xx | p50 ms | p95 ms | p99 ms | max ms |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for label, s in sorted(stats.items()):
        non2xx = sum(c for st, c in s.statuses.items() if not 200 <= st < 300)
        lines.append(
            f"| {label} | {s.count} | {s.errors} | {non2xx} | {s.pct(50):.1f} | "
            f"{s.pct(95):.1f} | {s.pct(99):.1f} | {max(s.latencies_ms, default=0):.1f} |"
        )
    lines += [
        "",
        "Samples (every ~5 s):",
        "",
        "| t s | worker RSS MB | DB conns | Redis MB | Celery queue | retry pending | dead |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    t0 = samples[0]["t"] if samples else 0
    for row in samples:
        lines.append(
            f"| {row['t'] - t0:.0f} | {row['worker_rss_mb']} | {row['db_connections']} | "
            f"{row['redis_used_mb']} | {row['celery_queue']} | {row['pending']} | "
            f"{row['dead']} |"
        )
    if len(samples) >= 4:
        warm = samples[len(samples) // 4]["worker_rss_mb"]
        lines += [
            "",
            f"Worker RSS after warm-up {warm} MB -> end {samples[-1]['worker_rss_mb']} MB.",
        ]
    r = reconciliation
    verdict = "EXACT" if r["acknowledged"] == r["stored"] + r["queued"] + r["dead"] else "MISMATCH"
    lines += [
        "",
        f"Reconciliation ({r['dataset']}): acknowledged {r['acknowledged']} = stored "
        f"{r['stored']} + queued {r['queued']} + dead {r['dead']} -> {verdict}",
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    minutes = float(os.environ.get("MINUTES", "1"))
    share = float(os.environ.get("SOAK_SHARE", "0.70"))
    run_id = f"soak{int(time.time())}"
    with bench_server(workers=4) as server, celery_worker(server):
        admin = server.api_key("admin")
        dataset, peak_dataset = f"soak_posts_{run_id}", f"soak_peak_{run_id}"
        prepare(server, admin, [dataset, peak_dataset])
        mix = Mix(server.api_key("scraper"), run_id, dataset)
        make = mix.factory()
        n = len(mix.endpoints())

        headers = {"Content-Type": "application/json", "X-API-Key": mix.key}
        # Peak-finding batches go to their own dataset so they do not enter the
        # reconciliation of the open-loop phase.
        peak_mix = Mix(mix.key, run_id + "peak", peak_dataset).factory()
        peak_scenario = Scenario(
            headers=headers,
            make_requests=lambda i: [peak_mix(i)[1:4]],  # type: ignore[list-item]
        )
        peak = measure(server, peak_scenario, runs=3, duration=4.0).rps
        target = peak * share
        print(
            f"peak {peak:.0f} req/s across {n} endpoints; soaking at {target:.0f} req/s "
            f"for {minutes:g} min",
            flush=True,
        )

        samples: list[dict[str, Any]] = []
        stop = threading.Event()
        master = _gunicorn_master(server)

        def sampler() -> None:
            while not stop.wait(SAMPLE_EVERY_S):
                try:
                    samples.append(sample(server, admin, master, dataset))
                except (OSError, psutil.Error) as exc:  # an overloaded server times out
                    print(f"sample skipped: {exc!r}", flush=True)

        thread = threading.Thread(target=sampler, daemon=True)
        started = time.time()
        thread.start()
        stats = open_loop(server.host, server.port, make, rate=target, duration=minutes * 60)
        seconds = time.time() - started
        stop.set()
        thread.join()
        time.sleep(SAMPLE_EVERY_S)  # let queued retries settle before counting
        samples.append(sample(server, admin, master, dataset))

        acknowledged = stats["records"].statuses.get(200, 0) * RECORDS_PER_BATCH
        status, data = server.request(
            "GET", f"/api/v1/datasets/{dataset}/records?limit=1", None, admin
        )
        stored = data["count"] if status == 200 else -1
        counts = _retry_counts(server, admin, dataset)
        reconciliation = {
            "dataset": dataset,
            "acknowledged": acknowledged,
            "stored": stored,
            "queued": counts["pending"],
            "dead": counts["dead"],
        }
        text = report(minutes, peak, target, stats, samples, reconciliation, seconds)
        print(text)
        out = ROOT / "test-artifacts" / f"soak-{datetime.now(UTC):%Y%m%d-%H%M%S}.md"
        out.parent.mkdir(exist_ok=True)
        out.write_text(text)
        print(f"report written to {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
