"""Dashboard pages: datasets, and the retry queue in the spirit of Sidekiq's retries UI."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

import orjson
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from apps.accounts.permissions import operator_required
from apps.accounts.services import actor_name
from apps.datasets.models import Dataset, RetryItem
from apps.datasets.selectors import (
    ERROR_CODES,
    TABS,
    RetryFilters,
    dataset_get,
    dataset_stats,
    recent_records,
    record_count,
    retry_detail,
    retry_items,
    retry_tab_counts,
    write_rate,
)
from apps.datasets.services import (
    retries_bulk_discard,
    retries_bulk_retry,
    retry_discard,
    retry_now,
)
from coreadmin.charts import sparkline
from coreadmin.clock import clock
from coreadmin.errors import ApiError, NotFound
from coreadmin.http import HtmxHttpRequest

PAGE_SIZE = 50


@login_required
def dataset_list(request: HtmxHttpRequest) -> HttpResponse:
    return render(request, "datasets/list.html", {"rows": dataset_stats()})


@login_required
def dataset_detail(request: HtmxHttpRequest, name: str) -> HttpResponse:
    try:
        dataset = dataset_get(name)
    except NotFound as exc:
        raise Http404(str(exc)) from exc
    rate = write_rate(dataset)
    written = [m["written"] for m in rate]
    context = {
        "dataset": dataset,
        "records": record_count(dataset),
        "counts": retry_tab_counts(RetryFilters(dataset=dataset.name)),
        "recent": recent_records(dataset),
        "rate": rate,
        "spark": sparkline(written, width=320, height=48),
        "last_minute": written[-1] if written else 0,
        "last_hour": sum(written),
        "peak_minute": max(written) if written else 0,
        "queued_hour": sum(m["queued"] for m in rate),
    }
    template = "datasets/detail.html"
    if request.htmx and not request.htmx.boosted:
        template += "#dataset-live"
    return render(request, template, context)


def _filter_query(filters: RetryFilters, **extra: Any) -> str:
    params = {"tab": filters.tab, "dataset": filters.dataset, "code": filters.code, "q": filters.q}
    params.update(extra)
    return urlencode({k: v for k, v in params.items() if v})


@login_required
def retry_list(request: HtmxHttpRequest) -> HttpResponse:
    filters = RetryFilters.from_params(request.GET)
    now = clock.now()
    page = Paginator(retry_items(filters, now=now), PAGE_SIZE).get_page(request.GET.get("page"))
    counts = retry_tab_counts(filters, now=now)
    context = {
        "filters": filters,
        "page": page,
        "counts": counts,
        "tabs": [(tab, counts[tab], _filter_query(filters, tab=tab)) for tab in TABS],
        "query": _filter_query(filters),
        "datasets": list(Dataset.objects.values_list("name", flat=True)),
        "codes": ERROR_CODES,
        "now": now,
        # Like Sidekiq's "live poll": the results refresh themselves every 5 s.
        "live": request.GET.get("live") == "1",
    }
    template = "datasets/retries.html"
    if request.htmx and not request.htmx.boosted:
        template += "#retry-results"
    return render(request, template, context)


@login_required
def retry_item(request: HttpRequest, item_id: int) -> HttpResponse:
    try:
        item = retry_detail(item_id)
    except NotFound as exc:
        raise Http404(str(exc)) from exc
    context = {
        "item": item,
        "record_json": json.dumps(item.record, indent=2, ensure_ascii=False, sort_keys=True),
        "original_json": (
            json.dumps(item.original_record, indent=2, ensure_ascii=False, sort_keys=True)
            if item.original_record is not None
            else ""
        ),
        "attempts": list(item.attempt_log.all()),
        "now": clock.now(),
    }
    return render(request, "datasets/retry_item.html", context)


def _item_action(
    request: HtmxHttpRequest, item_id: int, action: Callable[[], RetryItem]
) -> HttpResponse:
    """Runs an operator's action on one item; answers with the row (htmx) or goes back to
    the item page with a message."""
    try:
        item = action()
    except NotFound as exc:
        raise Http404(str(exc)) from exc
    except ApiError as exc:
        if request.htmx:
            return HttpResponse(exc.message, status=exc.status)
        messages.error(request, exc.message)
        return redirect("datasets:retry", item_id=item_id)
    if request.htmx:
        item = retry_detail(item_id)
        return render(request, "datasets/_retry_row.html", {"item": item, "now": clock.now()})
    if item.status != "resolved":
        messages.warning(request, f"Failed again ({item.code}); the item is {item.status}.")
    else:
        messages.success(request, f"Resolved: {item.resolution}.")
    return redirect("datasets:retry", item_id=item_id)


@require_POST
@operator_required
def retry_item_retry(request: HtmxHttpRequest, item_id: int) -> HttpResponse:
    record = None
    raw = request.POST.get("record", "").strip()
    if raw:
        try:
            record = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            messages.error(request, f"The edited record is not valid JSON: {exc}")
            return redirect("datasets:retry", item_id=item_id)
    actor = actor_name(request.user)
    return _item_action(
        request, item_id, lambda: retry_now(item_id=item_id, actor=actor, record=record)
    )


@require_POST
@operator_required
def retry_item_discard(request: HtmxHttpRequest, item_id: int) -> HttpResponse:
    actor = actor_name(request.user)
    return _item_action(request, item_id, lambda: retry_discard(item_id=item_id, actor=actor))


def _bulk_selection(params: Any) -> tuple[RetryFilters, str, int | None]:
    filters = RetryFilters.from_params(params)
    action = params.get("action", "")
    if action not in {"retry", "discard"}:
        raise Http404("Unknown bulk action.")
    try:
        max_id = int(params.get("max_id", "")) if params.get("max_id") else None
    except ValueError:
        max_id = None
    return filters, action, max_id


@operator_required
def retry_bulk(request: HtmxHttpRequest) -> HttpResponse:
    """GET: the confirmation step (what will change, how many). POST: do it, for exactly
    the items that matched when the operator confirmed (ids up to max_id)."""
    params = request.POST if request.method == "POST" else request.GET
    filters, action, max_id = _bulk_selection(params)
    selection = retry_items(filters).exclude(status="resolved")
    if request.method != "POST":
        if filters.tab == "resolved":
            messages.error(request, "Resolved items cannot be retried or discarded again.")
            return redirect(reverse("datasets:retries") + "?" + _filter_query(filters))
        sample = list(selection[:10])
        snapshot = selection.order_by("-id").values_list("id", flat=True).first() or 0
        context = {
            "filters": filters,
            "action": action,
            "count": selection.count(),
            "sample": sample,
            "max_id": snapshot,
            "query": _filter_query(filters),
        }
        return render(request, "datasets/retry_bulk.html", context)
    if max_id is None:
        raise Http404("Confirm the selection first.")
    selection = selection.filter(id__lte=max_id)
    description = filters.describe()
    actor = actor_name(request.user)
    if action == "retry":
        count = retries_bulk_retry(items=selection, actor=actor, description=description)
        messages.success(request, f"{count} items scheduled to retry now.")
    else:
        count = retries_bulk_discard(items=selection, actor=actor, description=description)
        messages.success(request, f"{count} items discarded.")
    return redirect(reverse("datasets:retries") + "?" + _filter_query(filters))
