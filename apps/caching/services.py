"""Writes: cache-stats rows (from scrapers, our own caches, Redis INFO) and retention."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import connection, transaction

from apps.caching.cache import REGISTRY
from apps.caching.models import CacheStat, CacheStatHour, RedisInfoSample
from coreadmin.clock import clock
from coreadmin.redis import connection as redis_connection


def cache_stat_record(
    *,
    cache: str,
    service: str = "",
    namespace: str = "",
    hits: int,
    misses: int,
    evictions: int = 0,
    size: int | None = None,
    interval_s: float = 60.0,
    source: str = CacheStat.Source.CLIENT,
    at: dt.datetime | None = None,
) -> CacheStat:
    row = CacheStat(
        at=at or clock.now(),
        cache=cache,
        service=service,
        namespace=namespace or cache,
        source=source,
        hits=hits,
        misses=misses,
        evictions=evictions,
        size=size,
        interval_s=interval_s,
    )
    cache_stats_store(rows=[row])
    return row


ROLLUP_SQL = (
    "INSERT INTO caching_cachestathour AS h (bucket, cache, service, namespace, hits, misses, "
    "evictions) {source} "
    "ON CONFLICT (bucket, cache) DO UPDATE SET hits = h.hits + excluded.hits, "
    "misses = h.misses + excluded.misses, evictions = h.evictions + excluded.evictions, "
    "service = excluded.service, namespace = excluded.namespace"
)


@transaction.atomic
def cache_stats_store(*, rows: list[CacheStat]) -> None:
    """Inserts interval rows and adds them to their hourly rollups (sorted, so concurrent
    writers lock rollup rows in one order)."""
    CacheStat.objects.bulk_create(rows)
    hours: dict[tuple[dt.datetime, str], list] = {}
    for r in rows:
        key = (r.at.astimezone(dt.UTC).replace(minute=0, second=0, microsecond=0), r.cache)
        entry = hours.setdefault(key, [r.service, r.namespace, 0, 0, 0])
        entry[0], entry[1] = r.service, r.namespace
        entry[2] += r.hits
        entry[3] += r.misses
        entry[4] += r.evictions
    if not hours:
        return
    keys = sorted(hours)
    values = ", ".join(
        ["(%s::timestamptz, %s, %s, %s, %s::bigint, %s::bigint, %s::bigint)"] * len(keys)
    )
    params = [p for k in keys for p in (*k, *hours[k])]
    with connection.cursor() as cursor:
        cursor.execute(ROLLUP_SQL.format(source=f"VALUES {values}"), params)


def cache_stats_rollup_rebuild(*, since: dt.datetime) -> None:
    """Recomputes hourly rollups from interval rows at or after ``since`` (bench data)."""
    since = since.replace(minute=0, second=0, microsecond=0)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("DELETE FROM caching_cachestathour WHERE bucket >= %s", [since])
        cursor.execute(
            ROLLUP_SQL.format(
                source="SELECT date_trunc('hour', at), cache, max(service), max(namespace), "
                "sum(hits), sum(misses), sum(evictions) FROM caching_cachestat "
                "WHERE at >= %s GROUP BY 1, 2 ORDER BY 1, 2"
            ),
            [since],
        )


_last_publish = [0.0]


def own_stats_publish(*, force: bool = False) -> int:
    """Writes each registered TwoTierCache's counter deltas since the last publish (one row
    per cache that saw traffic). Runs at most every CACHING_PUBLISH_SECONDS per process."""
    now = clock.time()
    interval = settings.CACHING_PUBLISH_SECONDS
    if not force and now - _last_publish[0] < interval:
        return 0
    elapsed = now - _last_publish[0] if _last_publish[0] else interval
    _last_publish[0] = now
    rows = []
    for namespace, cache in list(REGISTRY.items()):
        d = cache.take_deltas()
        hits, misses = d["l1_hits"] + d["l2_hits"], d["misses"]
        if hits or misses or d["evictions"]:
            rows.append(
                CacheStat(
                    at=clock.now(),
                    cache=f"coreadmin-{namespace}",
                    service=settings.CACHING_SELF_SERVICE,
                    namespace=namespace,
                    source=CacheStat.Source.SERVER,
                    hits=hits,
                    misses=misses,
                    evictions=d["evictions"],
                    size=d["size"],
                    interval_s=elapsed,
                )
            )
    cache_stats_store(rows=rows)
    return len(rows)


@dataclass(frozen=True)
class InfoCounters:
    run_id: str
    hits: int
    misses: int
    evicted: int


def info_delta(previous: InfoCounters | None, current: InfoCounters) -> InfoCounters:
    """Counter increases between two INFO samples. After a reset (Redis restarted: a new
    run_id; or CONFIG RESETSTAT: a counter went down) the increase is the new value,
    i.e. what was counted since the reset. No previous sample: nothing to compare, zero."""
    if previous is None:
        return InfoCounters(current.run_id, 0, 0, 0)
    reset = (
        previous.run_id != current.run_id
        or current.hits < previous.hits
        or current.misses < previous.misses
        or current.evicted < previous.evicted
    )
    if reset:
        return current
    return InfoCounters(
        current.run_id,
        current.hits - previous.hits,
        current.misses - previous.misses,
        current.evicted - previous.evicted,
    )


def read_redis_info() -> InfoCounters:
    info: dict[str, Any] = redis_connection().info()  # type: ignore[assignment]
    return InfoCounters(
        run_id=str(info.get("run_id", "")),
        hits=int(info.get("keyspace_hits", 0)),
        misses=int(info.get("keyspace_misses", 0)),
        evicted=int(info.get("evicted_keys", 0)),
    )


@transaction.atomic
def redis_info_sample(*, counters: InfoCounters | None = None) -> CacheStat | None:
    """Samples Redis INFO and records the delta since the previous sample as a
    CacheStat of cache "redis". Returns None for the first sample."""
    current = counters or read_redis_info()
    now = clock.now()
    last = RedisInfoSample.objects.select_for_update().order_by("-at", "-id").first()
    previous = (
        InfoCounters(last.run_id, last.keyspace_hits, last.keyspace_misses, last.evicted_keys)
        if last
        else None
    )
    RedisInfoSample.objects.create(
        at=now,
        run_id=current.run_id,
        keyspace_hits=current.hits,
        keyspace_misses=current.misses,
        evicted_keys=current.evicted,
    )
    RedisInfoSample.objects.filter(at__lt=now - dt.timedelta(days=1)).delete()
    if last is None:
        return None
    delta = info_delta(previous, current)
    return cache_stat_record(
        cache="redis",
        service="",
        namespace="redis",
        hits=delta.hits,
        misses=delta.misses,
        evictions=delta.evicted,
        interval_s=max((now - last.at).total_seconds(), 0.0),
        source=CacheStat.Source.REDIS,
        at=now,
    )


def cache_stats_retention(*, now: dt.datetime | None = None) -> int:
    cutoff = (now or clock.now()) - dt.timedelta(days=settings.CACHING_RETENTION_DAYS)
    deleted, _ = CacheStat.objects.filter(at__lt=cutoff).delete()
    CacheStatHour.objects.filter(bucket__lt=cutoff - dt.timedelta(hours=1)).delete()
    return deleted
