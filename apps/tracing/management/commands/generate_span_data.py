"""Bench and demo data: spans (raw rows and their sketches) and cache-stats intervals.

    python manage.py generate_span_data --spans 10000000 --hours 24
    python manage.py generate_span_data --spans 20000 --hours 2 --cache-days 1   # a demo

Spans are generated inside Postgres (generate_series, lognormal durations by Box-Muller),
one thread = one pass through the stage tree below, threads evenly spread over the last
``--hours``; then the minute and hour sketches are rebuilt from those rows, hour by hour,
with the same mapping the ingestion path uses.

``--reuse`` does nothing when the last ``--hours`` already hold at least 90% of
``--spans`` bench spans (benchmarks reuse their data between runs). ``--wipe`` empties
the span, sketch and cache-stats tables first: for bench databases only.
"""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

from django.core.management.base import BaseCommand
from django.db import connection, transaction

from apps.caching.services import cache_stats_rollup_rebuild
from apps.tracing.demo import STAGES
from apps.tracing.services import sketches_rebuild, span_partitions_ensure
from coreadmin.clock import clock


class Command(BaseCommand):
    help = "Generates spans (raw + sketches) and cache-stats for benchmarks and demos."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--spans", type=int, default=100_000)
        parser.add_argument("--hours", type=float, default=24.0)
        parser.add_argument("--services", type=int, default=3)
        parser.add_argument("--cache-days", type=float, default=7.0)
        parser.add_argument("--caches", type=int, default=8)
        parser.add_argument("--reuse", action="store_true")
        parser.add_argument("--wipe", action="store_true")

    def handle(self, *args: Any, **options: Any) -> None:
        now = clock.now().replace(microsecond=0)
        if options["reuse"] and self._has_spans(now, options["spans"], options["hours"]):
            self.stdout.write("bench spans already present for the window; nothing generated")
            return
        if options["wipe"]:
            with connection.cursor() as cursor:
                cursor.execute(
                    "TRUNCATE tracing_span, tracing_stageminute, tracing_stagehour, "
                    "caching_cachestat, caching_cachestathour"
                )
        if options["spans"]:
            self._spans(now, options["spans"], options["hours"], options["services"])
        if options["caches"] and options["cache_days"]:
            self._cache_stats(now, options["caches"], options["cache_days"])

    def _has_spans(self, now: dt.datetime, spans: int, hours: float) -> bool:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT coalesce(sum(count), 0) FROM tracing_stagehour "
                "WHERE service LIKE 'svc%%' AND bucket >= %s",
                [(now - dt.timedelta(hours=hours)).replace(minute=0, second=0)],
            )
            return int(cursor.fetchone()[0]) >= 0.9 * spans

    def _spans(self, now: dt.datetime, total: int, hours: float, services: int) -> None:
        start = now - dt.timedelta(hours=hours)
        span_partitions_ensure(
            days={(start + dt.timedelta(days=d)).date() for d in range(int(hours // 24) + 2)}
        )
        n_stages = len(STAGES)
        threads = max(total // n_stages, 1)
        columns = list(zip(*STAGES, strict=True))
        started = time.monotonic()
        chunk = 500_000 // n_stages  # threads per INSERT, so progress shows and WAL stays sane
        for first in range(0, threads, chunk):
            last = min(first + chunk, threads)
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute(
                    """
                    WITH s AS (
                        SELECT * FROM unnest(%s::text[], %s::text[], %s::float8[],
                                             %s::float8[], %s::float8[], %s::int[])
                               AS s(stage, parent, median, sigma, err, pos)
                    )
                    INSERT INTO tracing_span (started_at, thread_id, stage, name, parent_stage,
                                              service, duration_ms, status)
                    SELECT %s::timestamptz + make_interval(secs => t * %s + s.pos * 0.05),
                           'bench-' || t, s.stage, lower(s.stage), s.parent,
                           'svc' || (t %% %s),
                           s.median * exp(s.sigma * sqrt(-2 * ln(1 - random()))
                                          * cos(2 * pi() * random())),
                           CASE WHEN random() < s.err THEN 'error' ELSE 'ok' END
                    FROM generate_series(%s, %s) AS t CROSS JOIN s
                    """,
                    [
                        list(columns[0]),
                        list(columns[1]),
                        list(columns[2]),
                        list(columns[3]),
                        list(columns[4]),
                        list(range(n_stages)),
                        start,
                        hours * 3600 / threads,
                        services,
                        first,
                        last - 1,
                    ],
                )
            self.stdout.write(
                f"  spans: {last * n_stages:,} of {threads * n_stages:,} "
                f"({time.monotonic() - started:.0f} s)"
            )
        rows = 0
        hour = start.replace(minute=0, second=0)
        while hour < now:
            rows += sketches_rebuild(since=hour, until=hour + dt.timedelta(hours=1))
            hour += dt.timedelta(hours=1)
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE tracing_span")
            cursor.execute("ANALYZE tracing_stageminute")
            cursor.execute("ANALYZE tracing_stagehour")
        self.stdout.write(
            f"spans: {threads * n_stages:,} raw rows over {hours:g} h, {rows:,} sketch rows, "
            f"{time.monotonic() - started:.0f} s"
        )

    def _cache_stats(self, now: dt.datetime, caches: int, days: float) -> None:
        """One interval a minute per cache; hit rates drift per cache over the day."""
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(
                """
                INSERT INTO caching_cachestat (at, cache, service, namespace, source, hits,
                                               misses, evictions, size, interval_s)
                SELECT %s::timestamptz - make_interval(mins => m),
                       'svc' || (c %% 3) || CASE WHEN c < 3 THEN '-l1' ELSE '-l2-' || c END,
                       'svc' || (c %% 3), 'svc' || (c %% 3), 'client',
                       h, miss, (random() * 3)::int, 1000 + c * 100, 60
                FROM generate_series(0, %s) AS c,
                     generate_series(0, %s) AS m,
                     LATERAL (SELECT (600 * (0.55 + 0.4 * sin(m / 180.0 + c)))::int AS h,
                                     (600 * (0.45 - 0.4 * sin(m / 180.0 + c)))::int AS miss) x
                """,
                [now, caches - 1, int(days * 1440)],
            )
            self.stdout.write(f"cache stats: {cursor.rowcount:,} intervals for {caches} caches")
        cache_stats_rollup_rebuild(since=now - dt.timedelta(days=days, hours=1))
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE caching_cachestat")
            cursor.execute("ANALYZE caching_cachestathour")
