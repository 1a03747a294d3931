"""Prometheus metrics: requests by route and status, latency histogram, and the counters
other apps register here (degraded answers, dropped log lines, ...).

Under gunicorn, PROMETHEUS_MULTIPROC_DIR makes every worker write its samples to files
that /metrics merges, so the numbers cover the whole server, not one worker.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)

REQUESTS = Counter(
    "coreadmin_http_requests_total",
    "HTTP requests by route and status.",
    ["method", "route", "status"],
)
LATENCY = Histogram(
    "coreadmin_http_request_duration_seconds",
    "HTTP request latency by route.",
    ["method", "route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)
RATELIMIT_STATS_DROPPED = Counter(
    "coreadmin_ratelimit_stats_dropped_total",
    "Rate-limit decision counts dropped: Redis kept failing and too many were pending.",
)
DEGRADED = Counter(
    "coreadmin_degraded_answers_total",
    "Answers given without Redis (fail-open circuits, local rate-limit buckets).",
    ["component"],
)


def _route(request: HttpRequest) -> str:
    match = getattr(request, "resolver_match", None)
    if match is None:
        return "unmatched"
    route = getattr(match, "route", None) or match.view_name or "unknown"
    return "/" + route.lstrip("^").rstrip("$")


class PrometheusMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        started = time.perf_counter()
        response = self.get_response(request)
        route = _route(request)
        LATENCY.labels(request.method, route).observe(time.perf_counter() - started)
        REQUESTS.labels(request.method, route, str(response.status_code)).inc()
        return response


def metrics_view(request: HttpRequest) -> HttpResponse:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        payload = generate_latest(registry)
    else:
        payload = generate_latest()
    return HttpResponse(payload, content_type=CONTENT_TYPE_LATEST)
