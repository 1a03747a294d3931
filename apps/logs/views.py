"""The logs page: filters, keyset pages newest first, expandable context, live tail."""

from __future__ import annotations

import datetime as dt
from typing import Any
from urllib.parse import urlencode

import orjson
from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import HttpResponse, HttpResponseBadRequest, QueryDict
from django.shortcuts import render
from django.utils.dateparse import parse_datetime

from apps.logs.models import LEVELS, LogLine
from apps.logs.selectors import (
    LogFilter,
    consistent_reads,
    drop_counts,
    log_lines_page,
    log_lines_since,
    log_streams,
    searchable,
    tail_cursor,
    valid_tail_cursor,
)
from coreadmin.clock import clock
from coreadmin.http import HtmxHttpRequest

WINDOWS = {"15m": 15, "1h": 60, "6h": 360, "24h": 1440, "7d": 10080}
FILTER_PARAMS = ["service", "level", "logger", "q", "thread_id", "window", "since", "until"]


def _when(raw: str) -> dt.datetime | None:
    if not raw:
        return None
    value = parse_datetime(raw)
    if value is None:
        return None
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def filters_from(params: QueryDict) -> tuple[LogFilter, dict[str, str]]:
    raw = {name: params.get(name, "").strip() for name in FILTER_PARAMS}
    since = _when(raw["since"])
    if raw["window"] in WINDOWS and not since:
        since = clock.now() - dt.timedelta(minutes=WINDOWS[raw["window"]])
    q = raw["q"] if searchable(raw["q"]) else ""
    filters = LogFilter(
        service=raw["service"],
        level=raw["level"] if raw["level"] in LEVELS else "",
        logger=raw["logger"],
        q=q,
        thread_id=raw["thread_id"],
        since=since,
        until=_when(raw["until"]),
    )
    return filters, raw


def _cursor(raw: str) -> tuple[dt.datetime, int] | None:
    ts, _, line_id = raw.rpartition("_")
    when = _when(ts)
    return (when, int(line_id)) if when and line_id.isdigit() else None


def _decorate(lines: list[LogLine]) -> list[LogLine]:
    for line in lines:
        context = dict(line.context) if isinstance(line.context, dict) else {}
        traceback = line.traceback
        for key in ("exception", "traceback", "exc_info", "stack"):
            if context.get(key) == traceback:
                context.pop(key)
                break
        line.context_pretty = (  # type: ignore[attr-defined]
            orjson.dumps(context, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS).decode()
            if context
            else ""
        )
    return lines


@login_required
def log_list(request: HtmxHttpRequest) -> HttpResponse:
    filters, raw = filters_from(request.GET)
    before = _cursor(request.GET.get("before", ""))
    tail = request.GET.get("tail") == "1" and before is None
    # The tail's cursor and the page come from one snapshot: a line committed meanwhile
    # is shown by the tail's first poll, neither lost nor shown twice.
    with consistent_reads():
        cursor = tail_cursor() if tail else ""
        lines, older = log_lines_page(filters, before=before, limit=settings.LOGS_PAGE_SIZE)
    query = urlencode({k: v for k, v in raw.items() if v})
    context: dict[str, Any] = {
        "lines": _decorate(lines),
        "raw": raw,
        "levels": list(LEVELS),
        "windows": list(WINDOWS),
        "query": query,
        "older": f"{older[0].isoformat()}_{older[1]}" if older else "",
        "paged": before is not None,
        "tail": tail,
        "cursor": cursor,
        "tail_interval": settings.LOGS_TAIL_INTERVAL_SECONDS,
        "no_words": bool(raw["q"]) and not searchable(raw["q"]),
    }
    template = "logs/logs.html"
    if request.htmx and not request.htmx.boosted:
        return render(request, template + "#log-results", context)
    context["streams"] = log_streams()
    context["drops"] = drop_counts()
    return render(request, template, context)


@login_required
def log_tail(request: HtmxHttpRequest) -> HttpResponse:
    """Lines committed since ``cursor`` that match the filters, newest first, under a new
    poller carrying the next cursor. Nothing new: 204 (the poller stays and asks again
    with its cursor, which still covers every line not shown yet)."""
    filters, raw = filters_from(request.GET)
    cursor = request.GET.get("cursor", "")
    if not valid_tail_cursor(cursor):
        return HttpResponseBadRequest("cursor: a snapshot as the tail's poller sends it")
    page = log_lines_since(filters, cursor=cursor, limit=200)
    if not page.lines:
        return HttpResponse(status=204)
    context = {
        "lines": _decorate(page.lines),
        "query": urlencode({k: v for k, v in raw.items() if v}),
        "cursor": page.cursor,
        "more": page.more,
        "tail_interval": settings.LOGS_TAIL_INTERVAL_SECONDS,
        "tail": True,
    }
    return render(request, "logs/_tail.html", context)
