"""Shared benchmark machinery: a production-like server and a closed-loop load generator.

The server is gunicorn running coreadmin in production mode against DATABASE_URL /
REDIS_URL (a dedicated bench database by default). The load generator runs in separate
processes (so it does not share the server's GIL), each with threads holding one
keep-alive HTTP connection; every figure is the median of several runs.

    with bench_server() as server:
        key = server.api_key("admin")
        result = measure(server, Scenario.get("/api/v1/whoami", key), concurrency=32)
        print(result.line("whoami"))
"""

from __future__ import annotations

import base64
import contextlib
import http.client
import multiprocessing as mp
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parent.parent
BENCH_DB = os.environ.get(
    "BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/coreadmin_bench"
)
BENCH_REDIS = os.environ.get(
    "BENCH_REDIS_URL", os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def ensure_database(url: str) -> None:
    """Creates the bench database if it does not exist."""
    import psycopg

    name = url.rsplit("/", 1)[1].split("?")[0]
    admin_url = url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{name}"')


BENCH_ENCRYPTION_KEY = base64.urlsafe_b64encode(b"coreadmin bench only, not secret").decode()


def bench_env(**extra: str) -> dict[str, str]:
    env = {
        **os.environ,
        "COREADMIN_ENV": "production",
        "DEBUG": "false",
        "SECRET_KEY": "bench-" + "k9x2Lq7Zp4Wm8Rt3" * 4,
        "DATABASE_URL": BENCH_DB,
        "REDIS_URL": BENCH_REDIS,
        "REDIS_KEY_PREFIX": "bench:",
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        # Fixed, like SECRET_KEY: the bench database is kept between runs, and a new key
        # each run would leave the proxies of earlier runs undecryptable (leases -> 500).
        "ENCRYPTION_KEYS": os.environ.get("BENCH_ENCRYPTION_KEYS", BENCH_ENCRYPTION_KEY),
        "SECURE_SSL_REDIRECT": "false",
        "LOG_LEVEL": "WARNING",
    }
    env.update(extra)
    return env


def manage(env: dict[str, str], *args: str) -> str:
    result = subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True
    )
    if result.returncode != 0:
        raise RuntimeError(f"manage.py {' '.join(args)} failed:\n{result.stderr}")
    return result.stdout


@dataclass
class BenchServer:
    base_url: str
    host: str
    port: int
    env: dict[str, str]

    def api_key(self, scope: str = "admin", service: str = "") -> str:
        args = ["create_api_key", "--name", f"bench-{scope}", "--scope", scope]
        if service:
            args += ["--service", service]
        return manage(self.env, *args).strip().splitlines()[-1]

    def manage(self, *args: str) -> str:
        return manage(self.env, *args)

    def request(
        self, method: str, path: str, body: Any = None, key: str | None = None
    ) -> tuple[int, Any]:
        conn = http.client.HTTPConnection(self.host, self.port, timeout=30)
        headers = {"Content-Type": "application/json"}
        if key:
            headers["X-API-Key"] = key
        payload = orjson.dumps(body) if body is not None else None
        conn.request(method, path, body=payload, headers=headers)
        response = conn.getresponse()
        data = response.read()
        conn.close()
        return response.status, (orjson.loads(data) if data else None)


@contextlib.contextmanager
def bench_server(workers: int = 4, **extra_env: str) -> Iterator[BenchServer]:
    """gunicorn in production mode on a free loopback port; migrated; stopped on exit."""
    env = bench_env(**extra_env)
    ensure_database(env["DATABASE_URL"])
    manage(env, "migrate", "--no-input")
    port = free_port()
    metrics_dir = tempfile.mkdtemp(prefix="coreadmin-prom-")
    # The server's stderr goes to a file, never to a pipe: nobody reads a pipe once the
    # server is up, and when it fills (tracebacks) every worker blocks in its log call.
    stderr_log = Path(metrics_dir) / "gunicorn-stderr.log"
    env = {
        **env,
        "PROMETHEUS_MULTIPROC_DIR": metrics_dir,
        "BIND": f"127.0.0.1:{port}",
        "WEB_CONCURRENCY": str(workers),
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "coreadmin.wsgi"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=stderr_log.open("wb"),
    )
    server = BenchServer(f"http://127.0.0.1:{port}", "127.0.0.1", port, env)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if server.request("GET", "/readyz")[0] == 200:
                    break
            except OSError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                stderr = stderr_log.read_text(errors="replace")
                raise RuntimeError("bench server did not start: " + stderr[-2000:])
            time.sleep(0.2)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
        errors = stderr_log.read_text(errors="replace").count("Traceback")
        if errors:
            print(f"(the bench server logged {errors} tracebacks)", file=sys.stderr)
        shutil.rmtree(metrics_dir, ignore_errors=True)


@dataclass
class Scenario:
    """One unit of work per loop iteration: a list of requests, run in order on one
    connection. ``make_requests(i)`` returns [(method, path, body_bytes_or_None)], or use
    ``step`` for requests that depend on earlier responses (lease then report)."""

    headers: dict[str, str]
    make_requests: Callable[[int], list[tuple[str, str, bytes | None]]] | None = None
    step: Callable[[Callable[[str, str, Any], tuple[int, Any]], int], None] | None = None

    @staticmethod
    def get(path: str, key: str | None = None) -> Scenario:
        return Scenario(headers=_headers(key), make_requests=_FixedRequest("GET", path, None))

    @staticmethod
    def post(path: str, body: Any, key: str | None = None) -> Scenario:
        return Scenario(
            headers=_headers(key), make_requests=_FixedRequest("POST", path, orjson.dumps(body))
        )


def _headers(key: str | None) -> dict[str, str]:
    headers = {"Content-Type": "application/json"}
    if key:
        headers["X-API-Key"] = key
    return headers


@dataclass
class _FixedRequest:
    method: str
    path: str
    body: bytes | None

    def __call__(self, i: int) -> list[tuple[str, str, bytes | None]]:
        return [(self.method, self.path, self.body)]


@dataclass
class LoadResult:
    requests: int
    iterations: int
    errors: int
    seconds: float
    latencies_ms: list[float] = field(repr=False)
    statuses: dict[int, int] = field(default_factory=dict)

    @property
    def rps(self) -> float:
        return self.requests / self.seconds

    @property
    def ips(self) -> float:
        """Iterations (scenario runs) per second, e.g. lease+report cycles/s."""
        return self.iterations / self.seconds

    def pct(self, q: float) -> float:
        data = sorted(self.latencies_ms)
        if not data:
            return float("nan")
        return data[min(len(data) - 1, int(q / 100 * len(data)))]


def _worker(
    host: str,
    port: int,
    scenario: Scenario,
    threads: int,
    duration: float,
    start_at: float,
    out: Any,
    seed: int,
) -> None:
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    counters = {"requests": 0, "iterations": 0, "errors": 0}
    lock = threading.Lock()

    def run_thread(tid: int) -> None:
        conn = http.client.HTTPConnection(host, port, timeout=30)
        local_lat: list[float] = []
        local_status: dict[int, int] = {}
        requests = iterations = errors = 0
        i = seed * 1_000_000 + tid * 10_000

        def send(method: str, path: str, body: Any) -> tuple[int, Any]:
            nonlocal conn, requests, errors
            payload = body if body is None or isinstance(body, bytes) else orjson.dumps(body)
            started = time.perf_counter()
            try:
                conn.request(method, path, body=payload, headers=scenario.headers)
                response = conn.getresponse()
                data = response.read()
                status = response.status
            except (OSError, http.client.HTTPException):
                conn.close()
                conn = http.client.HTTPConnection(host, port, timeout=30)
                status, data = 599, b""
            local_lat.append((time.perf_counter() - started) * 1000)
            local_status[status] = local_status.get(status, 0) + 1
            requests += 1
            if status >= 500:
                errors += 1
            return status, (orjson.loads(data) if data and status < 599 else None)

        while time.time() < start_at:
            time.sleep(0.001)
        deadline = start_at + duration
        while time.time() < deadline:
            i += 1
            if scenario.step is not None:
                scenario.step(send, i)
            else:
                assert scenario.make_requests is not None
                for method, path, body in scenario.make_requests(i):
                    send(method, path, body)
            iterations += 1
        conn.close()
        with lock:
            latencies.extend(local_lat)
            for status, count in local_status.items():
                statuses[status] = statuses.get(status, 0) + count
            counters["requests"] += requests
            counters["iterations"] += iterations
            counters["errors"] += errors

    pool = [threading.Thread(target=run_thread, args=(t,)) for t in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    out.put((counters, latencies, statuses))


def load(
    server: BenchServer,
    scenario: Scenario,
    *,
    concurrency: int = 32,
    duration: float = 5.0,
    processes: int = 2,
) -> LoadResult:
    """Closed loop: ``concurrency`` connections, each sending its next request as soon as
    the previous answer arrived, for ``duration`` seconds."""
    ctx = mp.get_context("fork")
    queue = ctx.Queue()
    start_at = time.time() + 0.5
    per_process = [
        concurrency // processes + (1 if p < concurrency % processes else 0)
        for p in range(processes)
    ]
    procs = [
        ctx.Process(
            target=_worker,
            args=(server.host, server.port, scenario, n, duration, start_at, queue, p),
        )
        for p, n in enumerate(per_process)
        if n
    ]
    for proc in procs:
        proc.start()
    results = [queue.get() for _ in procs]
    for proc in procs:
        proc.join()
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    totals = {"requests": 0, "iterations": 0, "errors": 0}
    for counters, lat, st in results:
        latencies.extend(lat)
        for status, count in st.items():
            statuses[status] = statuses.get(status, 0) + count
        for name in totals:
            totals[name] += counters[name]
    return LoadResult(
        totals["requests"], totals["iterations"], totals["errors"], duration, latencies, statuses
    )


@dataclass
class Measured:
    runs: list[LoadResult]

    @property
    def rps(self) -> float:
        return statistics.median(r.rps for r in self.runs)

    @property
    def ips(self) -> float:
        return statistics.median(r.ips for r in self.runs)

    def pct(self, q: float) -> float:
        return statistics.median(r.pct(q) for r in self.runs)

    @property
    def errors(self) -> int:
        return sum(r.errors for r in self.runs)

    def line(self, label: str) -> str:
        statuses: dict[int, int] = {}
        for run in self.runs:
            for status, count in run.statuses.items():
                statuses[status] = statuses.get(status, 0) + count
        return (
            f"{label:<28} {self.rps:9.0f} req/s  {self.ips:9.0f} it/s  "
            f"p50 {self.pct(50):7.2f} ms  p99 {self.pct(99):7.2f} ms  "
            f"statuses {dict(sorted(statuses.items()))}  (median of {len(self.runs)} runs)"
        )


def measure(
    server: BenchServer,
    scenario: Scenario,
    *,
    runs: int = 3,
    concurrency: int = 32,
    duration: float = 4.0,
    warmup: float = 1.0,
) -> Measured:
    if warmup:
        load(server, scenario, concurrency=concurrency, duration=warmup)
    return Measured(
        [load(server, scenario, concurrency=concurrency, duration=duration) for _ in range(runs)]
    )


def ratio_line(label: str, value: float, baseline: float, target: float) -> str:
    share = value / baseline if baseline else float("nan")
    verdict = "meets" if share >= target else "MISSES"
    return f"{label}: {share:.0%} of baseline (target {target:.0%}) -> {verdict} target"
