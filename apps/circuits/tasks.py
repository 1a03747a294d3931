from __future__ import annotations

from celery import shared_task

from apps.circuits.services import circuit_events_flush as flush


@shared_task(name="apps.circuits.tasks.circuit_events_flush")
def circuit_events_flush() -> int:
    """Writes circuit transitions a crashed web process left in the Redis outbox."""
    return flush()
