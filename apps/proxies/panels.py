from __future__ import annotations

from typing import Any

from apps.proxies.selectors import pool_summaries
from coreadmin.panels import NavItem, Tile


def proxy_tile_context() -> dict[str, Any]:
    pools = pool_summaries()
    return {
        "pools": pools,
        "usable": sum(p["usable"] for p in pools),
        "total": sum(p["total"] for p in pools),
        "shrinking": [p["service"] for p in pools if p["shrinking"]],
    }


NAV = [NavItem("Proxies", "proxies:list", order=20)]
TILES = [
    Tile(
        "proxies",
        "Proxy pool",
        "proxies/_tile.html",
        proxy_tile_context,
        url_name="proxies:list",
        order=20,
    )
]
