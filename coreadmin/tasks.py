"""Project-wide periodic tasks."""

from __future__ import annotations

import socket

from celery import shared_task
from django.conf import settings

from coreadmin.clock import clock
from coreadmin.redis import connection, key

WORKER_HEARTBEAT_KEY = "worker:heartbeat"


@shared_task(name="coreadmin.tasks.worker_heartbeat")
def worker_heartbeat() -> None:
    """Beat runs this every 30 s; the dashboard shows the worker alive while it is fresh.
    Expires after the stale threshold, so a dead worker's beat disappears by itself."""
    connection().set(
        key(WORKER_HEARTBEAT_KEY),
        f"{clock.time()} {socket.gethostname()}",
        ex=settings.WORKER_HEARTBEAT_STALE_SECONDS,
    )


def worker_status() -> dict[str, object]:
    try:
        raw = connection().get(key(WORKER_HEARTBEAT_KEY))
    except Exception as exc:
        return {"state": "unknown", "detail": f"Redis unreachable ({type(exc).__name__})"}
    if raw is None:
        return {
            "state": "down",
            "detail": f"no heartbeat in the last {settings.WORKER_HEARTBEAT_STALE_SECONDS} s",
        }
    at, _, host = bytes(raw).decode().partition(" ")  # type: ignore[arg-type]
    age = max(0.0, clock.time() - float(at))
    return {"state": "ok", "detail": f"last heartbeat {age:.0f} s ago from {host}", "age_s": age}
