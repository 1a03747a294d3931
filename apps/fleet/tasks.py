from __future__ import annotations

from celery import shared_task

from apps.fleet.services import fleet_forget_silent as forget


@shared_task(name="apps.fleet.tasks.fleet_forget_silent")
def fleet_forget_silent() -> int:
    return forget()
