"""Reads: hit rates per cache and per namespace over a window, and over time."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from django.db import connection

from apps.caching.models import hit_rate
from coreadmin.clock import clock

WINDOWS = {900: "15 min", 3600: "1 h", 86400: "24 h", 604800: "7 d"}
DEFAULT_WINDOW_S = 3600
SERIES_POINTS = 48
HOURLY_AFTER_S = 6 * 3600


@dataclass
class CacheSummary:
    cache: str
    hits: int
    misses: int
    evictions: int
    size: int | None = None
    services: list[str] = field(default_factory=list)
    namespaces: list[str] = field(default_factory=list)
    series: list[float | None] = field(default_factory=list)

    @property
    def hit_rate(self) -> float | None:
        return hit_rate(self.hits, self.misses)


def _source(window_s: int, now: dt.datetime) -> tuple[str, str, dt.datetime]:
    """(table, time column, start): intervals for windows up to 6 h, hourly rollups (from
    the top of the first hour) for longer ones."""
    start = now - dt.timedelta(seconds=window_s)
    if window_s <= HOURLY_AFTER_S:
        return "caching_cachestat", "at", start
    return "caching_cachestathour", "bucket", start.replace(minute=0, second=0, microsecond=0)


def cache_summaries(
    *, window_s: int = DEFAULT_WINDOW_S, series: bool = False, now: dt.datetime | None = None
) -> list[CacheSummary]:
    """Totals per cache over the window and, with ``series``, the hit rate in SERIES_POINTS
    equal slices of it: one query grouped by cache and slice, one for the latest sizes."""
    now = now or clock.now()
    table, column, start = _source(window_s, now)
    span_s = max((now - start).total_seconds(), 1.0)
    # One slice per stored bucket at most: per interval (~1 min) or per hour of rollups.
    n_points = max(1, min(SERIES_POINTS, round(span_s / (60 if column == "at" else 3600))))
    step = span_s / n_points if series else 10.0**9
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT cache, floor(extract(epoch FROM {column} - %s) / %s)::int AS slot, "
            f"sum(hits), sum(misses), sum(evictions), max(service), max(namespace) "
            f"FROM {table} WHERE {column} >= %s AND {column} <= %s GROUP BY 1, 2 ORDER BY 1, 2",
            [start, step, start, now],
        )
        rows = cursor.fetchall()
        names = sorted({row[0] for row in rows})
        cursor.execute(
            "SELECT c.cache, (SELECT size FROM caching_cachestat s WHERE s.cache = c.cache "
            "AND s.at <= %s AND s.size IS NOT NULL ORDER BY s.at DESC LIMIT 1) "
            "FROM unnest(%s::text[]) AS c(cache)",
            [now, names],
        )
        sizes = dict(cursor.fetchall())
    out: dict[str, CacheSummary] = {}
    slots: dict[tuple[str, int], tuple[int, int]] = {}
    for cache, slot, hits, misses, evictions, service, namespace in rows:
        summary = out.get(cache)
        if summary is None:
            summary = out[cache] = CacheSummary(
                cache=cache, hits=0, misses=0, evictions=0, size=sizes.get(cache)
            )
            if series:
                summary.series = [None] * n_points
        summary.hits += int(hits)
        summary.misses += int(misses)
        summary.evictions += int(evictions)
        summary.services = sorted({*summary.services, service} - {""})
        summary.namespaces = sorted({*summary.namespaces, namespace} - {""})
        if series:  # the last instant of the window falls in the last slice
            index = min(slot, n_points - 1)
            before = slots.get((cache, index), (0, 0))
            slots[(cache, index)] = (before[0] + int(hits), before[1] + int(misses))
            summary.series[index] = hit_rate(*slots[(cache, index)])
    return list(out.values())


@dataclass
class NamespaceSummary:
    namespace: str
    caches: int
    hits: int
    misses: int
    evictions: int

    @property
    def hit_rate(self) -> float | None:
        return hit_rate(self.hits, self.misses)


def namespace_summaries(
    *, window_s: int = DEFAULT_WINDOW_S, now: dt.datetime | None = None
) -> list[NamespaceSummary]:
    now = now or clock.now()
    table, column, start = _source(window_s, now)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT namespace, count(DISTINCT cache), sum(hits), sum(misses), sum(evictions) "
            f"FROM {table} WHERE {column} >= %s AND {column} <= %s GROUP BY 1 ORDER BY 1",
            [start, now],
        )
        return [
            NamespaceSummary(row[0], row[1], int(row[2]), int(row[3]), int(row[4]))
            for row in cursor.fetchall()
        ]


def overall_hit_rate(*, window_s: int = DEFAULT_WINDOW_S) -> tuple[float | None, int]:
    """(hit rate of all caches together, number of caches) over the window."""
    summaries = cache_summaries(window_s=window_s)
    hits = sum(s.hits for s in summaries)
    misses = sum(s.misses for s in summaries)
    return hit_rate(hits, misses), len(summaries)
