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


def cache_summaries(
    *, window_s: int = DEFAULT_WINDOW_S, series: bool = False, now: dt.datetime | None = None
) -> list[CacheSummary]:
    """Totals per cache over the window and, with ``series``, the hit rate in SERIES_POINTS
    equal slices of it. One query: rows grouped by cache and slice, summed here."""
    now = now or clock.now()
    start = now - dt.timedelta(seconds=window_s)
    step = window_s / SERIES_POINTS if series else window_s + 1
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT cache, floor(extract(epoch FROM at - %s) / %s)::int AS slot, "
            "sum(hits), sum(misses), sum(evictions), max(at), "
            "(array_agg(size ORDER BY at DESC) FILTER (WHERE size IS NOT NULL))[1], "
            "array_agg(DISTINCT service), array_agg(DISTINCT namespace) "
            "FROM caching_cachestat WHERE at > %s AND at <= %s GROUP BY 1, 2 ORDER BY 1, 2",
            [start, step, start, now],
        )
        rows = cursor.fetchall()
    out: dict[str, CacheSummary] = {}
    latest: dict[str, dt.datetime] = {}
    slots: dict[tuple[str, int], tuple[int, int]] = {}
    for cache, slot, hits, misses, evictions, last_at, size, services, namespaces in rows:
        summary = out.get(cache)
        if summary is None:
            summary = out[cache] = CacheSummary(cache=cache, hits=0, misses=0, evictions=0)
            if series:
                summary.series = [None] * SERIES_POINTS
        summary.hits += int(hits)
        summary.misses += int(misses)
        summary.evictions += int(evictions)
        if size is not None and (cache not in latest or last_at > latest[cache]):
            summary.size, latest[cache] = size, last_at
        summary.services = sorted({*summary.services, *(s for s in services if s)})
        summary.namespaces = sorted({*summary.namespaces, *(n for n in namespaces if n)})
        if series:  # the last instant of the window falls in the last slice
            index = min(slot, SERIES_POINTS - 1)
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
    start = now - dt.timedelta(seconds=window_s)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT namespace, count(DISTINCT cache), sum(hits), sum(misses), sum(evictions) "
            "FROM caching_cachestat WHERE at > %s AND at <= %s GROUP BY 1 ORDER BY 1",
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
