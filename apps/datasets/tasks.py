"""Thin Celery tasks: retry due records, forget old batch ids."""

from __future__ import annotations

from celery import shared_task

from apps.datasets.services import (
    batch_prune,
    record_counts_compact,
    retries_process_due,
    retries_prune_resolved,
)


@shared_task(name="apps.datasets.tasks.retry_due")
def retry_due(max_passes: int = 20) -> dict[str, int]:
    """Claims and retries due items, pass after pass, until none are due (or max_passes)."""
    totals = {"claimed": 0, "resolved": 0, "failed": 0, "dead": 0}
    for _ in range(max_passes):
        counts = retries_process_due()
        for name in totals:
            totals[name] += counts[name]
        if counts["claimed"] == 0:
            break
    return totals


@shared_task(name="apps.datasets.tasks.prune_batches")
def prune_batches() -> int:
    return batch_prune()


@shared_task(name="apps.datasets.tasks.prune_resolved")
def prune_resolved() -> int:
    return retries_prune_resolved()


@shared_task(name="apps.datasets.tasks.compact_counts")
def compact_counts() -> int:
    return record_counts_compact()
