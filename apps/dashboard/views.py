from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render

from apps.dashboard.selectors import system_status
from coreadmin.http import HtmxHttpRequest
from coreadmin.panels import discover


@login_required
def overview(request: HtmxHttpRequest) -> HttpResponse:
    _nav, tiles = discover()
    context = {
        "status": system_status(),
        "tiles": [(tile, tile.context()) for tile in tiles],
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
                request, "dashboard/_tile.html", {"tile": candidate, "data": candidate.context()}
            )
    raise Http404(f"No tile named {slug!r}.")
