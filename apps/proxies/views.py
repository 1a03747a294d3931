from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_POST

from apps.accounts.permissions import operator_required
from apps.accounts.services import actor_name, audit_record
from apps.proxies import selectors, services
from apps.proxies.charts import line_chart
from apps.proxies.models import Proxy
from apps.proxies.pool import active_lease_counts
from coreadmin.clock import clock
from coreadmin.http import HtmxHttpRequest

PAGE_SIZE = 50


@login_required
def proxy_list(request: HtmxHttpRequest) -> HttpResponse:
    filters = {
        "service": request.GET.get("service", ""),
        "status": request.GET.get("status", ""),
        "country": request.GET.get("country", ""),
        "search": request.GET.get("q", ""),
    }
    page = Paginator(selectors.proxy_list(**filters), PAGE_SIZE).get_page(request.GET.get("page"))
    context = {
        "page": page,
        "filters": filters,
        "service_names": selectors.service_names(),
        "statuses": Proxy.Status.values,
        "pools": selectors.pool_summaries(),
    }
    template = "proxies/list.html"
    if request.htmx and not request.htmx.boosted:
        template += "#proxy-table"
    return render(request, template, context)


def _proxy_or_404(proxy_id: int) -> Proxy:
    proxy = selectors.proxy_get(proxy_id=proxy_id)
    if proxy is None:
        raise Http404("No such proxy.")
    return proxy


@login_required
def proxy_detail(request: HttpRequest, proxy_id: int) -> HttpResponse:
    proxy = _proxy_or_404(proxy_id)
    history = selectors.proxy_health_history(proxy=proxy)
    context = {
        "proxy": proxy,
        "history": history[-20:][::-1],
        "health_chart": line_chart(
            [1.0 if c.ok else 0.0 for c in history], top=1.0, label="check passed"
        ),
        "latency_chart": line_chart([c.latency_ms for c in history], label="latency", unit=" ms"),
        "bans": proxy.active_bans,  # type: ignore[attr-defined]
        "leases": selectors.proxy_recent_leases(proxy=proxy),
        "active_leases": active_lease_counts([proxy.pk])[proxy.pk],
        "now": clock.now(),
    }
    return render(request, "proxies/detail.html", context)


def _row(request: HttpRequest, proxy_id: int) -> HttpResponse:
    return render(request, "proxies/_row.html", {"proxy": _proxy_or_404(proxy_id)})


def _set_status(request: HttpRequest, proxy_id: int, status: str) -> HttpResponse:
    proxy = _proxy_or_404(proxy_id)
    services.proxy_set_status(proxy=proxy, status=status, actor=actor_name(request.user))
    return _row(request, proxy_id)


@require_POST
@operator_required
def proxy_freeze(request: HttpRequest, proxy_id: int) -> HttpResponse:
    return _set_status(request, proxy_id, Proxy.Status.FROZEN)


@require_POST
@operator_required
def proxy_unfreeze(request: HttpRequest, proxy_id: int) -> HttpResponse:
    return _set_status(request, proxy_id, Proxy.Status.ACTIVE)


@require_POST
@operator_required
def proxy_check(request: HttpRequest, proxy_id: int) -> HttpResponse:
    """Checks now, in the request (bounded by PROXY_CHECK_TIMEOUT_SECONDS)."""
    proxy = _proxy_or_404(proxy_id)
    result = services.proxies_check(proxies=[proxy])[proxy.pk]
    audit_record(
        actor=actor_name(request.user),
        action="proxy.check",
        target=str(proxy),
        details={"ok": result.ok, "error": result.error},
    )
    return _row(request, proxy_id)
