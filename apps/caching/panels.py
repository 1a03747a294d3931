from __future__ import annotations

from typing import Any

from apps.caching.cache import TwoTierCache
from apps.caching.models import hit_rate
from apps.caching.selectors import cache_summaries
from coreadmin.panels import NavItem, Tile

NAV = [NavItem("Caches", "caching:caches", order=70)]

_tiles = TwoTierCache("dashboard-tiles-caching", l1_maxsize=16, l1_ttl=2.0, l2_ttl=5.0)


def hit_rate_tile() -> dict[str, Any]:
    def compute() -> dict[str, Any]:
        summaries = cache_summaries(window_s=3600)
        hits = sum(s.hits for s in summaries)
        misses = sum(s.misses for s in summaries)
        worst = sorted(
            (s for s in summaries if s.hit_rate is not None), key=lambda s: s.hit_rate or 0.0
        )[:3]
        return {
            "hit_rate": hit_rate(hits, misses),
            "caches": len(summaries),
            "lookups": hits + misses,
            "worst": [{"cache": s.cache, "hit_rate": s.hit_rate} for s in worst],
        }

    return _tiles.get_or_set("hit-rate", compute)


TILES = [
    Tile(
        "cache-hit-rate",
        "Cache hit rate (1 h)",
        "caching/_tile.html",
        hit_rate_tile,
        url_name="caching:caches",
        order=70,
    )
]
