"""The system status panel: is each part of coreadmin answering?"""

from __future__ import annotations

from typing import Any

from coreadmin.health import check_postgres, check_redis
from coreadmin.tasks import worker_status


def system_status() -> list[dict[str, Any]]:
    postgres = check_postgres()
    redis = check_redis()
    worker = worker_status()
    return [
        {
            "name": "PostgreSQL",
            "state": "ok" if postgres == "ok" else "down",
            "detail": "answering" if postgres == "ok" else postgres,
        },
        {
            "name": "Redis",
            "state": "ok" if redis == "ok" else "down",
            "detail": "answering" if redis == "ok" else redis,
        },
        {"name": "Celery worker", "state": worker["state"], "detail": worker["detail"]},
    ]
