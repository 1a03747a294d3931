"""Writes of the datasets app: definitions, batch writes, the retry queue."""

from apps.datasets.services.definitions import dataset_delete, dataset_mapping, dataset_put
from apps.datasets.services.retries import (
    retries_bulk_discard,
    retries_bulk_retry,
    retries_process_due,
    retries_prune_resolved,
    retry_backoff_seconds,
    retry_discard,
    retry_now,
)
from apps.datasets.services.writes import (
    batch_prune,
    batch_submit,
    record_counts_compact,
    records_write,
)

__all__ = [
    "batch_prune",
    "batch_submit",
    "dataset_delete",
    "dataset_mapping",
    "dataset_put",
    "record_counts_compact",
    "records_write",
    "retries_bulk_discard",
    "retries_bulk_retry",
    "retries_process_due",
    "retries_prune_resolved",
    "retry_backoff_seconds",
    "retry_discard",
    "retry_now",
]
