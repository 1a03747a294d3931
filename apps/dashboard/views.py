from __future__ import annotations

import logging
from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render

from apps.dashboard.selectors import system_status
from coreadmin.http import HtmxHttpRequest
from coreadmin.panels import Tile, discover

logger = logging.getLogger("coreadmin.dashboard")


def tile_data(tile: Tile) -> dict[str, Any] | None:
    """A tile whose data cannot be read shows as unavailable; the overview still renders."""
    try:
        return tile.context()
    except Exception:
        logger.exception("tile %s failed", tile.slug)
        return None


@login_required
def overview(request: HtmxHttpRequest) -> HttpResponse:
    _nav, tiles = discover()
    context = {
        "status": system_status(),
        "tiles": [(tile, tile_data(tile)) for tile in tiles],
    }
    template = "dashboard/overview.html"
    if request.htmx:
        template += "#status"
    return render(request, template, context)


@login_required
def tile(request: HttpRequest, slug: str) -> HttpResponse:
    _nav, tiles = discover()
    for candidate in tiles:
        if candidate.slug == slug:
            return render(
                request, "dashboard/_tile.html", {"tile": candidate, "data": tile_data(candidate)}
            )
    raise Http404(f"No tile named {slug!r}.")
