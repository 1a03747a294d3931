from __future__ import annotations

from typing import Any

from apps.logs.selectors import error_rate
from coreadmin.charts import sparkline
from coreadmin.panels import NavItem, Tile


def error_rate_tile() -> dict[str, Any]:
    rate = error_rate(minutes=30)
    return {**rate, "spark": sparkline(rate["series"], width=280, height=40)}


NAV = [NavItem("Logs", "logs:list", order=70)]
TILES = [
    Tile(
        "logs-errors",
        "Error-log rate",
        "logs/_tile.html",
        error_rate_tile,
        url_name="logs:list",
        order=70,
        refresh_seconds=15,
    )
]
