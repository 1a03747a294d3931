"""POST /api/v1/fleet/heartbeat (API.md) and a read of the fleet for tools."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from ninja import Router

from apps.accounts.auth import require_service
from apps.fleet.schemas import HeartbeatIn, HeartbeatOut, InstanceListOut
from apps.fleet.selectors import instance_list, stale_threshold
from apps.fleet.services import heartbeat_record
from coreadmin.clock import clock
from coreadmin.http import ApiRequest

router = Router(tags=["fleet"])


@router.post("/heartbeat", response=HeartbeatOut)
def heartbeat(request: ApiRequest, payload: HeartbeatIn) -> dict[str, Any]:
    """Records the instance as alive and answers with its service's configuration, so a
    scraper picks up an edit (within FLEET_CONFIG_CACHE_SECONDS) without a restart."""
    require_service(request.auth, payload.service)
    config = heartbeat_record(
        service=payload.service,
        instance=payload.instance,
        version=payload.version,
        memory_mb=payload.memory_mb,
        extra=payload.extra,
    )
    return {
        "config": config.as_dict(),
        "stale_after_s": settings.FLEET_STALE_SECONDS,
        "server_time": clock.now(),
    }


@router.get("/instances", response=InstanceListOut)
def instances(
    request: ApiRequest, service: str = "", state: str = "", limit: int = 100
) -> dict[str, Any]:
    """Instances newest heartbeat first; ``state`` is ``live`` or ``stale``. A key
    restricted to a service sees only that service's instances."""
    if request.auth.service:
        require_service(request.auth, service or request.auth.service)
        service = request.auth.service
    limit = max(1, min(limit, 1000))
    threshold = stale_threshold()
    rows = list(instance_list(service=service, state=state)[:limit])
    items = [
        {
            "service": r.service,
            "instance": r.instance,
            "version": r.version,
            "memory_mb": r.memory_mb,
            "last_seen_at": r.last_seen_at,
            "first_seen_at": r.first_seen_at,
            "live": r.last_seen_at >= threshold,
        }
        for r in rows
    ]
    return {"items": items, "count": len(items)}
