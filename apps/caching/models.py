from __future__ import annotations

from django.db import models


class CacheStat(models.Model):
    """One interval's counters of one cache: reported by a scraper (POST /cache-stats),
    published by coreadmin's own caches, or derived from Redis INFO deltas."""

    class Source(models.TextChoices):
        CLIENT = "client"
        SERVER = "server"
        REDIS = "redis"

    at = models.DateTimeField(db_index=True)
    cache = models.CharField(max_length=200)
    service = models.CharField(max_length=100, blank=True)
    namespace = models.CharField(max_length=200, blank=True)
    source = models.CharField(max_length=10, choices=Source.choices, default=Source.CLIENT)
    hits = models.BigIntegerField(default=0)
    misses = models.BigIntegerField(default=0)
    evictions = models.BigIntegerField(default=0)
    size = models.BigIntegerField(null=True, blank=True)
    interval_s = models.FloatField(default=60.0)

    class Meta:
        indexes = [models.Index(fields=["cache", "at"], name="caching_stat_cache_at")]

    def __str__(self) -> str:
        return f"{self.cache} @ {self.at:%Y-%m-%d %H:%M:%S}"

    @property
    def hit_rate(self) -> float | None:
        return hit_rate(self.hits, self.misses)


class CacheStatHour(models.Model):
    """CacheStat rows summed per cache and hour (counters add, so this is exact); windows
    longer than 6 h read these instead of every interval."""

    bucket = models.DateTimeField()
    cache = models.CharField(max_length=200)
    service = models.CharField(max_length=100, blank=True)
    namespace = models.CharField(max_length=200, blank=True)
    hits = models.BigIntegerField(default=0)
    misses = models.BigIntegerField(default=0)
    evictions = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["bucket", "cache"], name="caching_stathour_key")
        ]

    def __str__(self) -> str:
        return f"{self.cache} @ {self.bucket:%Y-%m-%d %H:00}"


class RedisInfoSample(models.Model):
    """The raw cumulative counters of Redis INFO at one moment; deltas between samples
    become CacheStat rows (cache "redis")."""

    at = models.DateTimeField(db_index=True)
    run_id = models.CharField(max_length=64)
    keyspace_hits = models.BigIntegerField()
    keyspace_misses = models.BigIntegerField()
    evicted_keys = models.BigIntegerField()

    def __str__(self) -> str:
        return f"redis INFO @ {self.at:%Y-%m-%d %H:%M:%S}"


def hit_rate(hits: int, misses: int) -> float | None:
    total = hits + misses
    return hits / total if total else None
