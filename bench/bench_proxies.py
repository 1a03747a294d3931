"""Proxy leasing: lease and lease+report cycles with 10 and with 10,000 proxies, next to
GET /api/v1/whoami (auth only) in the same run, 32 concurrent keep-alive clients.

Targets (issue 3): lease throughput at least 50% of whoami's; lease p50 with 10 proxies
and with 10,000 proxies within 20% of each other (selection cost flat in pool size).
"""

from __future__ import annotations

import statistics
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from bench.harness import Measured, Scenario, bench_server, load, ratio_line

SMALL, LARGE = 10, 10_000
REPORT = orjson.dumps({"outcome": "success", "latency_ms": 120.0, "status_code": 200})


@dataclass
class LeaseCycle:
    """One iteration: lease, then report the outcome on the same connection."""

    body: bytes

    def __call__(self, send: Any, i: int) -> None:
        status, lease = send("POST", "/api/v1/proxies/lease", self.body)
        if status == 200:
            send("POST", f"/api/v1/proxies/leases/{lease['lease_id']}/report", REPORT)


def _lease_body(service: str) -> bytes:
    return orjson.dumps({"service": service, "target": "example.com"})


def _import(server: Any, service: str, count: int) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"{service}.txt"
        path.write_text(
            "\n".join(
                f"http://user{i}:pw{i}@10.{i // 65536 % 256}.{i // 256 % 256}.{i % 256}:8080"
                for i in range(count)
            )
        )
        server.manage("import_proxies", str(path), "--service", service)


def _mean_ms(measured: Measured) -> float:
    """Median over runs of each run's mean latency (steadier than p50 when the latency
    distribution is wide, as on a machine shared with other work)."""
    return statistics.median(statistics.fmean(r.latencies_ms) for r in measured.runs)


def interleaved(server: Any, scenarios: dict[str, Scenario], runs: int) -> dict[str, Measured]:
    """Runs the scenarios in turn, ``runs`` rounds, so that a machine busy with other work
    slows each of them alike (medians per scenario)."""
    for scenario in scenarios.values():
        load(server, scenario, duration=1.0)
    results: dict[str, list] = {name: [] for name in scenarios}
    for _ in range(runs):
        for name, scenario in scenarios.items():
            results[name].append(load(server, scenario, duration=4.0))
    return {name: Measured(r) for name, r in results.items()}


def main() -> None:
    with bench_server() as server:
        _import(server, "bench-small", SMALL)
        _import(server, "bench-large", LARGE)
        key = server.api_key("scraper")
        headers = {"Content-Type": "application/json", "X-API-Key": key}
        lease = "/api/v1/proxies/lease"
        first = interleaved(
            server,
            {
                "whoami": Scenario.get("/api/v1/whoami", key),
                "small": Scenario.post(lease, {"service": "bench-small", "target": "t"}, key),
                "large": Scenario.post(lease, {"service": "bench-large", "target": "t"}, key),
            },
            runs=5,
        )
        cycles = interleaved(
            server,
            {
                "small": Scenario(headers=headers, step=LeaseCycle(_lease_body("bench-small"))),
                "large": Scenario(headers=headers, step=LeaseCycle(_lease_body("bench-large"))),
            },
            runs=3,
        )
        whoami, lease_small, lease_large = first["whoami"], first["small"], first["large"]
        cycle_small, cycle_large = cycles["small"], cycles["large"]
        print(whoami.line("GET /api/v1/whoami"))
        print(lease_small.line(f"lease, {SMALL} proxies"))
        print(lease_large.line(f"lease, {LARGE} proxies"))
        print(cycle_small.line(f"lease+report, {SMALL} proxies"))
        print(cycle_large.line(f"lease+report, {LARGE} proxies"))
        print(f"lease+report cycles/s with {LARGE} proxies: {cycle_large.ips:.0f}")
        print(
            ratio_line(
                f"lease ({LARGE} proxies) vs whoami throughput", lease_large.rps, whoami.rps, 0.50
            )
        )
        for label, small, large in (
            ("p50", lease_small.pct(50), lease_large.pct(50)),
            ("mean", _mean_ms(lease_small), _mean_ms(lease_large)),
        ):
            spread = abs(large - small) / small if small else float("nan")
            verdict = "meets" if spread <= 0.20 else "MISSES"
            print(
                f"lease {label} latency {SMALL} vs {LARGE} proxies: {small:.2f} ms vs "
                f"{large:.2f} ms, {spread:.0%} apart (target within 20%) -> {verdict} target"
            )
