"""Cache-stats in (POST /cache-stats) and hit rates per cache out (GET /caches)."""

from __future__ import annotations

from typing import Any

from ninja import Query, Router, Status

from apps.accounts.auth import require_service
from apps.caching.schemas import CachesOut, CacheStatAccepted, CacheStatIn
from apps.caching.selectors import cache_summaries
from apps.caching.services import cache_stat_record
from coreadmin.http import ApiRequest

router = Router(tags=["caching"])


@router.post("/cache-stats", response={202: CacheStatAccepted})
def post_cache_stats(request: ApiRequest, payload: CacheStatIn) -> Status:
    """One interval's counters of one cache (the counts during interval_s, not totals)."""
    if payload.service:
        require_service(request.auth, payload.service)
    fields = payload.dict()
    fields["service"] = payload.service or request.auth.service or ""
    fields["namespace"] = payload.namespace or ""
    cache_stat_record(**fields)
    return Status(202, {"accepted": 1})


@router.get("/caches", response=CachesOut)
def get_caches(
    request: ApiRequest, window_s: int = Query(3600, ge=60, le=35 * 86400)
) -> dict[str, Any]:
    """Hits, misses and hit rate (hits / (hits + misses), null without traffic) per cache."""
    return {
        "items": [
            {
                "cache": s.cache,
                "hits": s.hits,
                "misses": s.misses,
                "evictions": s.evictions,
                "size": s.size,
                "hit_rate": s.hit_rate,
            }
            for s in cache_summaries(window_s=window_s)
        ],
        "window_s": window_s,
    }
