from __future__ import annotations

from celery import shared_task

from apps.caching import services


@shared_task(name="apps.caching.tasks.redis_info_sample")
def redis_info_sample() -> None:
    """Every minute: Redis INFO hit/miss deltas into cache-stats."""
    services.redis_info_sample()


@shared_task(name="apps.caching.tasks.cache_stats_retention")
def cache_stats_retention() -> int:
    return services.cache_stats_retention()
