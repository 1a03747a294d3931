from __future__ import annotations

from typing import Any

from apps.ratelimits.selectors import policy_list, policy_panels
from coreadmin.panels import NavItem, Tile


def ratelimit_tile() -> dict[str, Any]:
    panels, degraded = policy_panels(list(policy_list()[:200]), hours=1, top=3)
    return {
        "policies": len(panels),
        "granted": sum(p.granted_total for p in panels),
        "denied": sum(p.denied_total for p in panels),
        "shadow": sum(p.shadow_total for p in panels),
        "most_denied": sorted((p for p in panels if p.denied_total), key=lambda p: -p.denied_total)[
            :3
        ],
        "degraded": degraded,
    }


NAV = [NavItem("Rate limits", "ratelimits:list", order=35)]
TILES = [
    Tile(
        "rate-limits",
        "Rate limits (last hour)",
        "ratelimits/_tile.html",
        ratelimit_tile,
        url_name="ratelimits:list",
        order=35,
    )
]
