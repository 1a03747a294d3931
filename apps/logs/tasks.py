from __future__ import annotations

from typing import Any

from celery import shared_task

from apps.logs.partitions import partitions_ahead, retention_apply
from apps.logs.services import log_batches_prune


@shared_task(name="apps.logs.tasks.logs_maintain_partitions")
def logs_maintain_partitions() -> dict[str, Any]:
    """Hourly: create the coming days' partitions, then enforce retention; forget old
    batch ids."""
    created = partitions_ahead()
    result = retention_apply()
    return {
        "created": [d.isoformat() for d in created],
        "dropped": result.dropped,
        "trimmed": result.trimmed,
        "batch_ids_forgotten": log_batches_prune(),
    }
