from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpResponse
from django.shortcuts import render

from apps.caching.selectors import (
    DEFAULT_WINDOW_S,
    WINDOWS,
    cache_summaries,
    namespace_summaries,
)
from coreadmin.charts import sparkline
from coreadmin.http import HtmxHttpRequest


def _query_without_page(request: HtmxHttpRequest) -> str:
    query = request.GET.copy()
    query.pop("page", None)
    return query.urlencode()


@login_required
def caches(request: HtmxHttpRequest) -> HttpResponse:
    try:
        window_s = int(request.GET.get("window_s", DEFAULT_WINDOW_S))
    except ValueError:
        window_s = DEFAULT_WINDOW_S
    if window_s not in WINDOWS:
        window_s = DEFAULT_WINDOW_S
    query = request.GET.get("q", "").strip()
    summaries = [s for s in cache_summaries(window_s=window_s, series=True) if query in s.cache]
    rows = [
        {"cache": s, "spark": sparkline(s.series, width=200, height=32, top=1.0)} for s in summaries
    ]
    context = {
        "qs": _query_without_page(request),
        "page": Paginator(rows, 50).get_page(request.GET.get("page")),
        "namespaces": namespace_summaries(window_s=window_s),
        "window_s": window_s,
        "windows": WINDOWS,
        "q": query,
    }
    template = "caching/caches.html"
    if request.htmx and not request.htmx.boosted:
        template += "#cache-tables"
    return render(request, template, context)
