from __future__ import annotations

from typing import Any

from apps.caching.cache import TwoTierCache
from apps.tracing.selectors import slowest_stages
from coreadmin.panels import NavItem, Tile

NAV = [NavItem("Execution tracker", "tracing:tracker", order=60)]

# Tiles refresh every 10 s on every open overview: computed once per 5 s fleet-wide.
_tiles = TwoTierCache("dashboard-tiles-tracing", l1_maxsize=16, l1_ttl=2.0, l2_ttl=5.0)


def slowest_stages_tile() -> dict[str, Any]:
    def compute() -> dict[str, Any]:
        stages = slowest_stages(window_s=3600, limit=5)
        return {
            "stages": [
                {"stage": s.stage, "p95_ms": s.p95_ms, "count": s.count, "errors": s.error_count}
                for s in stages
            ]
        }

    return _tiles.get_or_set("slowest", compute)


TILES = [
    Tile(
        "slowest-stages",
        "Slowest stages (p95, 1 h)",
        "tracing/_tile.html",
        slowest_stages_tile,
        url_name="tracing:tracker",
        order=60,
    )
]
