"""Reads: per-stage statistics by merging stored sketches, and one thread's spans."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from typing import Any

import psycopg
from django.conf import settings
from django.db import connection

from apps.tracing.sketch import STORED_COLUMNS, Merged
from coreadmin.clock import clock

WINDOWS = {900: "15 min", 3600: "1 h", 86400: "24 h", 604800: "7 d"}
DEFAULT_WINDOW_S = 3600
# A window reads minute sketches for its first, partial hour and hour sketches for the
# rest (the current hour's row is always up to date), so it is exact to the minute while
# reading at most ~60 minute rows per stage and service. When those first minutes are
# older than minute retention, the window starts at the top of its first hour instead.
SPARK_POINTS = 48
THREAD_SPAN_LIMIT = 2000


@dataclass
class StageStat:
    stage: str
    parent_stage: str
    count: int
    error_count: int
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    max_ms: float | None
    mean_ms: float | None
    services: list[str] = field(default_factory=list)
    p95_series: list[float | None] = field(default_factory=list)

    @property
    def error_rate(self) -> float:
        return self.error_count / self.count if self.count else 0.0


def stage_sort_key(stage: str) -> tuple:
    """ "2.10_X" after "2.9_Y": numeric prefix compared as numbers, then the name."""
    match = re.match(r"^(\d+(?:\.\d+)*)_?", stage)
    if not match:
        return ((1_000_000,), stage)
    return (tuple(int(p) for p in match.group(1).split(".")), stage)


def _floor(moment: dt.datetime, unit: str) -> dt.datetime:
    if unit == "minute":
        return moment.replace(second=0, microsecond=0)
    return moment.replace(minute=0, second=0, microsecond=0)


def window_plan(
    window_s: int, now: dt.datetime | None = None
) -> tuple[dt.datetime, list[tuple[str, dt.datetime, dt.datetime]]]:
    """(start, [(table, from, to), ...]): which sketch rows cover the window."""
    now = now or clock.now()
    start = _floor(now - dt.timedelta(seconds=window_s), "minute")
    first_full_hour = _floor(start, "hour")
    if first_full_hour < start:
        first_full_hour += dt.timedelta(hours=1)
    if window_s <= 3600 or first_full_hour > now:
        return start, [("tracing_stageminute", start, now)]
    minute_horizon = now - dt.timedelta(days=settings.TRACING_MINUTE_RETENTION_DAYS)
    if start < minute_horizon:
        hour_start = _floor(start, "hour")
        return hour_start, [("tracing_stagehour", hour_start, now)]
    plan = [("tracing_stagehour", first_full_hour, now)]
    if start < first_full_hour:
        last_minute = first_full_hour - dt.timedelta(minutes=1)
        plan.insert(0, ("tracing_stageminute", start, last_minute))
    return start, plan


def window_start(window_s: int, now: dt.datetime | None = None) -> dt.datetime:
    return window_plan(window_s, now)[0]


def fetch_binary(sql: str, params: list[Any]) -> list[tuple[Any, ...]]:
    """Runs a query on Django's connection with psycopg's binary result format: sketch
    bins (bytea) arrive as raw bytes instead of hex text, about twice as fast to read.
    (Django's own cursors are client-side and text-only; this query bypasses its query
    log, so django_assert_num_queries does not count it.)"""
    connection.ensure_connection()
    with psycopg.Cursor(connection.connection) as cursor:
        cursor.execute(sql, params, binary=True)
        return cursor.fetchall()


def stage_stats(
    *,
    window_s: int = DEFAULT_WINDOW_S,
    service: str = "",
    series: bool = False,
    now: dt.datetime | None = None,
) -> list[StageStat]:
    """One query: the window's sketch rows; merged in Python (see sketch.Merged)."""
    now = now or clock.now()
    start, plan = window_plan(window_s, now)
    selects = []
    params: list[Any] = []
    for table, low, high in plan:
        select = (
            f"SELECT bucket, service, stage, parent_stage, {STORED_COLUMNS} FROM {table} "
            f"WHERE bucket >= %s AND bucket <= %s"
        )
        params += [low, high]
        if service:
            select += " AND service = %s"
            params.append(service)
        selects.append(select)
    sql = " UNION ALL ".join(selects)
    totals: dict[str, Merged] = {}
    parents: dict[str, str] = {}
    services: dict[str, set[str]] = {}
    points: dict[str, dict[int, Merged]] = {}
    span_s = max((now - start).total_seconds(), 1.0)
    # One point per bucket at most (a point per minute, or per hour once hours are read).
    step_s = 3600 if plan[-1][0] == "tracing_stagehour" else 60
    n_points = max(1, min(SPARK_POINTS, round(span_s / step_s)))
    for row in fetch_binary(sql, params):
        bucket, svc, stage, parent = row[:4]
        stored = row[4:]
        if stage not in services:
            services[stage] = set()
            parents[stage] = parent
        parents[stage] = parents[stage] or parent
        services[stage].add(svc)
        index = (
            min(int((bucket - start).total_seconds() / span_s * n_points), n_points - 1)
            if series
            else 0
        )
        point = points.setdefault(stage, {}).get(index)
        if point is None:
            point = points[stage][index] = Merged()
        point.add_row(stored)
    # Each stage's total is the merge of its points (a few dozen merges, not one per row).
    for stage, stage_points in points.items():
        merged = totals[stage] = Merged()
        for point in stage_points.values():
            merged.merge(point)
    out = []
    for stage in sorted(totals, key=stage_sort_key):
        merged = totals[stage]
        p50, p95, p99 = merged.quantiles((0.50, 0.95, 0.99))
        stat = StageStat(
            stage=stage,
            parent_stage=parents.get(stage, ""),
            count=merged.count,
            error_count=merged.error_count,
            p50_ms=p50,
            p95_ms=p95,
            p99_ms=p99,
            max_ms=merged.max_ms if merged.count else None,
            mean_ms=merged.sum_ms / merged.count if merged.count else None,
            services=sorted(services[stage]),
        )
        if series:
            stage_points = points.get(stage, {})
            stat.p95_series = [
                stage_points[i].quantiles((0.95,))[0] if i in stage_points else None
                for i in range(n_points)
            ]
        out.append(stat)
    return out


def slowest_stages(*, window_s: int = DEFAULT_WINDOW_S, limit: int = 5) -> list[StageStat]:
    stats = [s for s in stage_stats(window_s=window_s) if s.p95_ms is not None]
    return sorted(stats, key=lambda s: s.p95_ms or 0.0, reverse=True)[:limit]


def service_names(*, window_s: int = 7 * 86400) -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT DISTINCT service FROM tracing_stagehour WHERE bucket >= %s ORDER BY 1",
            [window_start(window_s)],
        )
        return [row[0] for row in cursor.fetchall()]


# ---------------------------------------------------------------- threads


@dataclass
class ThreadSpan:
    stage: str
    name: str
    parent_stage: str
    service: str
    started_at: dt.datetime
    duration_ms: float
    status: str
    depth: int = 0
    offset_ms: float = 0.0
    children: list[ThreadSpan] = field(default_factory=list, repr=False)

    @property
    def ended_at(self) -> dt.datetime:
        return self.started_at + dt.timedelta(milliseconds=self.duration_ms)


@dataclass
class Thread:
    thread_id: str
    spans: list[ThreadSpan]  # depth-first, children under their parent, by start time
    total_ms: float
    started_at: dt.datetime | None
    truncated: bool


def thread_spans(*, thread_id: str) -> Thread:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT stage, name, parent_stage, service, started_at, duration_ms, status "
            "FROM tracing_span WHERE thread_id = %s ORDER BY started_at, id LIMIT %s",
            [thread_id, THREAD_SPAN_LIMIT + 1],
        )
        rows = cursor.fetchall()
    truncated = len(rows) > THREAD_SPAN_LIMIT
    spans = [ThreadSpan(*row) for row in rows[:THREAD_SPAN_LIMIT]]
    return build_thread(thread_id, spans, truncated=truncated)


def build_thread(thread_id: str, spans: list[ThreadSpan], *, truncated: bool = False) -> Thread:
    """Nests each span under the latest span, started no later than it, whose stage is its
    parent_stage; spans without such a parent are roots. Returns them depth-first."""
    # At equal start times the enclosing span comes first: the longer, else the root.
    spans = sorted(spans, key=lambda s: (s.started_at, -s.duration_ms, bool(s.parent_stage)))
    if not spans:
        return Thread(thread_id, [], 0.0, None, truncated)
    start = spans[0].started_at
    end = max(s.ended_at for s in spans)
    latest: dict[str, ThreadSpan] = {}
    roots: list[ThreadSpan] = []
    for span in spans:
        span.offset_ms = (span.started_at - start).total_seconds() * 1000
        parent = latest.get(span.parent_stage) if span.parent_stage else None
        if parent is None or parent is span:
            roots.append(span)
        else:
            parent.children.append(span)
        latest[span.stage] = span
    ordered: list[ThreadSpan] = []
    stack = [(root, 0) for root in reversed(roots)]
    while stack:
        span, depth = stack.pop()
        span.depth = depth
        ordered.append(span)
        stack.extend((child, depth + 1) for child in reversed(span.children))
    return Thread(thread_id, ordered, (end - start).total_seconds() * 1000, start, truncated)
