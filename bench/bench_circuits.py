"""Circuit breakers: API throughput next to whoami, and at the Redis level our one-script
breaker against pybreaker's Redis storage on the same Redis, in the same run.

Figures printed:
- POST /api/v1/circuits/{name}/acquire req/s vs GET /api/v1/whoami (target >= 60%);
- guarded calls/s (acquire + record success) of our Lua script vs pybreaker.call() with
  CircuitRedisStorage, 32 concurrent clients (4 processes x 8 threads), median of 3 runs;
- correctness under the same 32 clients all failing: how many "closed -> open"
  transitions each breaker made (ours must be exactly 1).
"""

from __future__ import annotations

import contextlib
import uuid

import redis

from bench.harness import BENCH_REDIS, Scenario, bench_server, measure, ratio_line
from bench.redisload import django_settings, median_rate, run_clients

CLIENTS = {"processes": 4, "threads": 8}


def _our_breaker(name: str, failure_threshold: int = 5):
    from apps.circuits.lua import CIRCUIT_SCRIPT
    from apps.circuits.models import Circuit
    from apps.circuits.services import script_args
    from coreadmin.clock import clock

    circuit = Circuit(name=name, failure_threshold=failure_threshold)
    prefix = f"bench:circuit:{name}"
    keys = [prefix, f"{prefix}:window", f"{prefix}:probes", f"{prefix}:stats", f"{prefix}:outbox"]

    def make_client():
        client = redis.Redis.from_url(BENCH_REDIS)
        return client, client.register_script(CIRCUIT_SCRIPT)

    def guarded_call():
        client, script = make_client()

        def op():
            answer = script(
                keys=keys, args=script_args(circuit, "acquire", clock.ms()), client=client
            )
            if int(answer[1]):
                script(
                    keys=keys,
                    args=script_args(circuit, "record", clock.ms(), "success", "1.0"),
                    client=client,
                )
                return "ok"
            return "refused"

        return op

    def failing_call():
        client, script = make_client()

        def op():
            answer = script(
                keys=keys,
                args=script_args(circuit, "record", clock.ms(), "failure", "1.0"),
                client=client,
            )
            return sum(1 for raw in answer[6:] if b'"to_state":"open"' in raw)

        return op

    return keys, guarded_call, failing_call


def _pybreaker(name: str, fail_max: int = 5):
    import pybreaker

    class CountOpens(pybreaker.CircuitBreakerListener):
        def __init__(self) -> None:
            self.opens = 0

        def state_change(self, cb, old_state, new_state) -> None:
            if new_state.name == pybreaker.STATE_OPEN:
                self.opens += 1

    def make_breaker():
        client = redis.Redis.from_url(BENCH_REDIS)
        storage = pybreaker.CircuitRedisStorage(
            pybreaker.STATE_CLOSED, client, namespace=f"bench:pybreaker:{name}"
        )
        listener = CountOpens()
        breaker = pybreaker.CircuitBreaker(
            fail_max=fail_max, reset_timeout=600, state_storage=storage, listeners=[listener]
        )
        return breaker, listener

    def guarded_call():
        breaker, _listener = make_breaker()

        def op():
            try:
                breaker.call(lambda: None)
                return "ok"
            except pybreaker.CircuitBreakerError:
                return "refused"

        return op

    def failing_call():
        breaker, listener = make_breaker()

        def boom():
            raise ValueError("down")

        def op():
            before = listener.opens
            with contextlib.suppress(ValueError, pybreaker.CircuitBreakerError):
                breaker.call(boom)
            return listener.opens - before

        return op

    return f"bench:pybreaker:{name}", guarded_call, failing_call


def _cleanup(pattern: str) -> None:
    client = redis.Redis.from_url(BENCH_REDIS)
    keys = list(client.scan_iter(match=pattern, count=1000))
    if keys:
        client.delete(*keys)


def redis_level() -> None:
    django_settings()
    run_id = uuid.uuid4().hex[:8]
    ours_runs, theirs_runs = [], []
    for i in range(3):
        _keys, ours_ok, _ = _our_breaker(f"ok-{run_id}-{i}")
        _prefix, theirs_ok, _ = _pybreaker(f"ok-{run_id}-{i}")
        ours_runs.append(run_clients(ours_ok, duration=3, **CLIENTS))
        theirs_runs.append(run_clients(theirs_ok, duration=3, **CLIENTS))
    ours, theirs = median_rate(ours_runs), median_rate(theirs_runs)
    print(f"guarded calls/s, 32 clients   ours (Lua script)  {ours:9.0f}/s   (median of 3)")
    print(f"guarded calls/s, 32 clients   pybreaker + Redis  {theirs:9.0f}/s   (median of 3)")
    print(f"ours / pybreaker: {ours / theirs:.2f}x")
    for i in range(3):
        _keys, _, ours_fail = _our_breaker(f"fail-{run_id}-{i}")
        _prefix, _, theirs_fail = _pybreaker(f"fail-{run_id}-{i}")
        ours_opens = run_clients(ours_fail, duration=1, **CLIENTS).tally
        theirs_opens = run_clients(theirs_fail, duration=1, **CLIENTS).tally
        print(
            "32 clients failing at once: closed->open transitions "
            f"ours {sum(k * v for k, v in ours_opens.items())} (must be 1), "
            f"pybreaker {sum(k * v for k, v in theirs_opens.items())}"
        )
    _cleanup(f"bench:circuit:*{run_id}*")
    _cleanup(f"bench:pybreaker:*{run_id}*")


def api_level() -> None:
    with bench_server() as server:
        key = server.api_key("scraper")
        whoami = measure(server, Scenario.get("/api/v1/whoami", key))
        acquire = measure(server, Scenario.post("/api/v1/circuits/bench/acquire", {}, key))
        record = measure(
            server,
            Scenario.post(
                "/api/v1/circuits/bench/record", {"outcome": "success", "duration_ms": 3.0}, key
            ),
        )
        print(whoami.line("GET /api/v1/whoami"))
        print(acquire.line("POST circuits acquire"))
        print(record.line("POST circuits record"))
        print(ratio_line("circuit acquire vs whoami throughput", acquire.rps, whoami.rps, 0.60))
        print(ratio_line("circuit record vs whoami throughput", record.rps, whoami.rps, 0.60))


def main() -> None:
    api_level()
    redis_level()
