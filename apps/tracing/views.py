from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpResponse
from django.shortcuts import redirect, render

from apps.tracing.charts import waterfall
from apps.tracing.selectors import (
    DEFAULT_WINDOW_S,
    WINDOWS,
    service_names,
    stage_stats,
    thread_spans,
    window_plan,
)
from coreadmin.charts import sparkline
from coreadmin.http import HtmxHttpRequest


def _window(request: HtmxHttpRequest) -> int:
    try:
        window_s = int(request.GET.get("window_s", DEFAULT_WINDOW_S))
    except ValueError:
        return DEFAULT_WINDOW_S
    return window_s if window_s in WINDOWS else DEFAULT_WINDOW_S


def _query_without_page(request: HtmxHttpRequest) -> str:
    query = request.GET.copy()
    query.pop("page", None)
    return query.urlencode()


@login_required
def tracker(request: HtmxHttpRequest) -> HttpResponse:
    thread_id = request.GET.get("thread_id", "").strip()
    if thread_id:
        return redirect("tracing:thread", thread_id=thread_id)
    window_s = _window(request)
    service = request.GET.get("service", "")
    stats = stage_stats(window_s=window_s, service=service, series=True)
    depth: dict[str, int] = {}
    rows = []
    for stat in stats:
        depth[stat.stage] = depth.get(stat.parent_stage, -1) + 1 if stat.parent_stage else 0
        rows.append({"stat": stat, "depth": depth[stat.stage], "spark": sparkline(stat.p95_series)})
    page = Paginator(rows, 50).get_page(request.GET.get("page"))
    context = {
        "qs": _query_without_page(request),
        "page": page,
        "window_s": window_s,
        "hour_aligned": [t for t, _low, _high in window_plan(window_s)[1]] == ["tracing_stagehour"],
        "windows": WINDOWS,
        "service": service,
        "services": service_names(),
    }
    template = "tracing/tracker.html"
    if request.htmx and not request.htmx.boosted:
        template += "#stage-table"
    return render(request, template, context)


@login_required
def thread(request: HtmxHttpRequest, thread_id: str) -> HttpResponse:
    found = thread_spans(thread_id=thread_id)
    context = {"thread": found, "chart": waterfall(found)}
    return render(request, "tracing/thread.html", context, status=200 if found.spans else 404)
