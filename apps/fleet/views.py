from __future__ import annotations

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpResponse
from django.shortcuts import render

from apps.fleet.selectors import fleet_summary, instance_list, service_overview, stale_threshold
from coreadmin.clock import clock
from coreadmin.http import HtmxHttpRequest


@login_required
def fleet(request: HtmxHttpRequest) -> HttpResponse:
    service = request.GET.get("service", "")
    state = request.GET.get("state", "")
    if state not in {"", "live", "stale"}:
        state = ""
    page = Paginator(instance_list(service=service, state=state), 50).get_page(
        request.GET.get("page")
    )
    context = {
        "page": page,
        "service": service,
        "state": state,
        "now": clock.now(),
        "threshold": stale_threshold(),
        "stale_after_s": settings.FLEET_STALE_SECONDS,
        "cache_seconds": settings.FLEET_CONFIG_CACHE_SECONDS,
    }
    template = "fleet/fleet.html"
    if request.htmx and not request.htmx.boosted:
        return render(request, template + "#fleet-instances", context)
    context["summary"] = fleet_summary()
    context["services"] = service_overview()
    return render(request, template, context)
