from __future__ import annotations

from typing import Any

from apps.datasets.selectors import retry_queue_totals
from coreadmin.panels import NavItem, Tile

NAV = [
    NavItem("Datasets", "datasets:list", order=40),
    NavItem("Retry queue", "datasets:retries", order=41),
]


def retry_tile_context() -> dict[str, Any]:
    return retry_queue_totals()


TILES = [
    Tile(
        "retry-queue",
        "Retry queue",
        "datasets/_tile.html",
        retry_tile_context,
        url_name="datasets:retries",
        order=40,
    )
]
