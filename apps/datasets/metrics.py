"""Prometheus counters of the write path (merged across gunicorn workers by /metrics)."""

from __future__ import annotations

from prometheus_client import Counter

RECORDS = Counter(
    "coreadmin_dataset_records_total",
    "Records submitted to datasets, by outcome (written, queued for retry).",
    ["dataset", "outcome"],
)
RETRY_ATTEMPTS = Counter(
    "coreadmin_retry_attempts_total",
    "Retry attempts by outcome (resolved, failed, dead).",
    ["outcome"],
)
