"""Proxy leasing: lease and lease+report cycles with 10 and with 10,000 proxies, next to
GET /api/v1/whoami (auth only) in the same run, 32 concurrent keep-alive clients.

Targets (issue 3): lease throughput at least 50% of whoami's; lease p50 with 10 proxies
and with 10,000 proxies within 20% of each other (selection cost flat in pool size).
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from bench.harness import Scenario, bench_server, measure, ratio_line

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


def main() -> None:
    with bench_server() as server:
        _import(server, "bench-small", SMALL)
        _import(server, "bench-large", LARGE)
        key = server.api_key("scraper")
        headers = {"Content-Type": "application/json", "X-API-Key": key}
        whoami = measure(server, Scenario.get("/api/v1/whoami", key))
        lease_small = measure(
            server,
            Scenario.post(
                "/api/v1/proxies/lease", {"service": "bench-small", "target": "example.com"}, key
            ),
        )
        lease_large = measure(
            server,
            Scenario.post(
                "/api/v1/proxies/lease", {"service": "bench-large", "target": "example.com"}, key
            ),
        )
        cycle_small = measure(
            server, Scenario(headers=headers, step=LeaseCycle(_lease_body("bench-small")))
        )
        cycle_large = measure(
            server, Scenario(headers=headers, step=LeaseCycle(_lease_body("bench-large")))
        )
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
        p50_small, p50_large = lease_small.pct(50), lease_large.pct(50)
        spread = abs(p50_large - p50_small) / p50_small if p50_small else float("nan")
        verdict = "meets" if spread <= 0.20 else "MISSES"
        print(
            f"lease p50 {SMALL} vs {LARGE} proxies: {p50_small:.2f} ms vs {p50_large:.2f} ms, "
            f"{spread:.0%} apart (target within 20%) -> {verdict} target"
        )
