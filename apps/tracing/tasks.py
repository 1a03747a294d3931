from __future__ import annotations

from celery import shared_task

from apps.tracing import services


@shared_task(name="apps.tracing.tasks.tracing_retention")
def tracing_retention() -> dict[str, int]:
    """Hourly: drops expired span partitions and old sketches."""
    return services.tracing_retention()
