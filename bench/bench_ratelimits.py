"""Rate limits: API throughput next to whoami, and at the Redis level our GCRA script
against the `limits` library's moving-window strategy on the same Redis, in the same run.

Figures printed:
- POST /api/v1/ratelimits/{key}/acquire req/s vs GET /api/v1/whoami (target >= 60%);
- decisions/s with 32 concurrent clients (4 processes x 8 threads), median of 3 runs, of
  our script and of limits.MovingWindowRateLimiter(RedisStorage) (target: ours >= 1.5x);
- over-grant check under the same 32 clients: a limit of N per hour, hammered; granted
  must not exceed N plus what refilled during the run (ours) or N (moving window).
"""

from __future__ import annotations

import time
import uuid

import redis

from bench.harness import BENCH_REDIS, Scenario, bench_server, measure, ratio_line
from bench.redisload import django_settings, median_rate, run_clients

CLIENTS = {"processes": 4, "threads": 8}


def _ours(name: str, limit: int, period_ms: float, burst: int, cost: int = 1):
    from apps.ratelimits.lua import GCRA_SCRIPT
    from apps.ratelimits.models import Policy

    t = Policy(key=name, limit=limit, period_ms=period_ms, burst=burst).emission_interval_us
    keys = [f"bench:rl:{name}", f"bench:rl:{name}:stats", f"bench:rl:{name}:denied"]

    def make():
        client = redis.Redis.from_url(BENCH_REDIS)
        script = client.register_script(GCRA_SCRIPT)

        def op():
            now = round(time.time() * 1_000_000)
            return int(
                script(keys=keys, args=[now, t, burst, cost, 0, "bench#1"], client=client)[0]
            )

        return op

    return make, t


def _theirs(name: str, limit: int, cost: int = 1):
    from limits import RateLimitItemPerHour
    from limits.storage import RedisStorage
    from limits.strategies import MovingWindowRateLimiter

    item = RateLimitItemPerHour(limit)

    def make():
        limiter = MovingWindowRateLimiter(RedisStorage(BENCH_REDIS))

        def op():
            return int(limiter.hit(item, "bench", name, cost=cost))

        return op

    return make


def _cleanup(run_id: str) -> None:
    client = redis.Redis.from_url(BENCH_REDIS)
    for pattern in (f"bench:rl:*{run_id}*", f"LIMITS:*{run_id}*"):
        keys = list(client.scan_iter(match=pattern, count=1000))
        if keys:
            client.delete(*keys)


def redis_level() -> None:
    django_settings()
    run_id = uuid.uuid4().hex[:8]
    # Throughput: a generous limit (mostly grants), fresh keys each run.
    ours_runs, theirs_runs = [], []
    for i in range(3):
        ours, _t = _ours(f"tp-{run_id}-{i}", 10_000_000, 3_600_000, 10_000_000)
        ours_runs.append(run_clients(ours, duration=3, **CLIENTS))
        theirs_runs.append(
            run_clients(_theirs(f"tp-{run_id}-{i}", 10_000_000), duration=3, **CLIENTS)
        )
    a, b = median_rate(ours_runs), median_rate(theirs_runs)
    print(f"decisions/s, 32 clients   ours GCRA script          {a:9.0f}/s  (median of 3)")
    print(f"decisions/s, 32 clients   limits moving window      {b:9.0f}/s  (median of 3)")
    verdict = "meets" if a >= 1.5 * b else "MISSES"
    print(f"GCRA vs limits moving window: {a / b:.2f}x (target 1.50x) -> {verdict} target")
    # Weighted cost: GCRA is O(1) per decision, the moving window stores one entry per token.
    ours_runs, theirs_runs = [], []
    for i in range(3):
        ours, _t = _ours(f"wc-{run_id}-{i}", 10_000_000, 3_600_000, 10_000_000, cost=20)
        ours_runs.append(run_clients(ours, duration=3, **CLIENTS))
        theirs = _theirs(f"wc-{run_id}-{i}", 10_000_000, cost=20)
        theirs_runs.append(run_clients(theirs, duration=3, **CLIENTS))
    a, b = median_rate(ours_runs), median_rate(theirs_runs)
    print(f"decisions/s, cost 20          ours GCRA script          {a:9.0f}/s  (median of 3)")
    print(f"decisions/s, cost 20          limits moving window      {b:9.0f}/s  (median of 3)")
    print(f"GCRA vs limits moving window at cost 20: {a / b:.2f}x")
    # Over-grant: N per hour, hammered by 32 clients for 2 s.
    n = 1000
    for i in range(3):
        ours, t = _ours(f"og-{run_id}-{i}", n, 3_600_000, n)
        started = time.time()
        got = run_clients(ours, duration=2, **CLIENTS)
        elapsed_us = (time.time() - started) * 1_000_000
        bound = n + int(elapsed_us // t)
        theirs = run_clients(_theirs(f"og-{run_id}-{i}", n), duration=2, **CLIENTS)
        print(
            f"over-grant check (limit {n}/h, 32 clients): ours granted {got.tally.get(1, 0)} "
            f"of {got.calls} (allowed at most {bound}), limits granted "
            f"{theirs.tally.get(1, 0)} of {theirs.calls} (allowed at most {n})"
        )
    client = redis.Redis.from_url(BENCH_REDIS)
    ours_key = f"bench:rl:og-{run_id}-0"
    theirs_key = next(iter(client.scan_iter(match=f"LIMITS:*og-{run_id}-0*", count=1000)), None)
    print(
        f"memory per bucket at {n}/h: ours {client.memory_usage(ours_key) or 0} bytes, "
        f"limits moving window {client.memory_usage(theirs_key) if theirs_key else 0} bytes"
    )
    _cleanup(run_id)


def api_level() -> None:
    with bench_server() as server:
        key = server.api_key("scraper")
        admin = server.api_key("admin")
        status, _ = server.request(
            "PUT",
            "/api/v1/ratelimits/bench",
            {"limit": 1_000_000_000, "period_ms": 1000, "burst": 1_000_000_000},
            admin,
        )
        assert status == 200, status
        server.request(
            "PUT", "/api/v1/ratelimits/bench-tight", {"limit": 10, "period_ms": 1000}, admin
        )
        whoami = measure(server, Scenario.get("/api/v1/whoami", key))
        granted = measure(
            server, Scenario.post("/api/v1/ratelimits/bench/acquire", {"cost": 1}, key)
        )
        mostly_denied = measure(
            server, Scenario.post("/api/v1/ratelimits/bench-tight/acquire", {"cost": 1}, key)
        )
        print(whoami.line("GET /api/v1/whoami"))
        print(granted.line("POST ratelimits acquire"))
        print(mostly_denied.line("POST acquire (mostly deny)"))
        print(ratio_line("rate-limit acquire vs whoami throughput", granted.rps, whoami.rps, 0.60))


def main() -> None:
    api_level()
    redis_level()
