"""Foundation: the cost of API-key authentication, GET /api/v1/whoami next to /healthz."""

from __future__ import annotations

from bench.harness import Scenario, bench_server, measure, ratio_line


def main() -> None:
    with bench_server() as server:
        key = server.api_key("scraper")
        healthz = measure(server, Scenario.get("/healthz"))
        whoami = measure(server, Scenario.get("/api/v1/whoami", key))
        print(healthz.line("GET /healthz"))
        print(whoami.line("GET /api/v1/whoami"))
        print(ratio_line("whoami vs healthz throughput", whoami.rps, healthz.rps, 0.80))
