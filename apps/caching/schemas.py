from __future__ import annotations

from ninja import Field, Schema


class CacheStatIn(Schema):
    cache: str = Field(min_length=1, max_length=200)
    service: str | None = Field("", max_length=100)
    namespace: str | None = Field("", max_length=200)
    hits: int = Field(ge=0)
    misses: int = Field(ge=0)
    evictions: int = Field(0, ge=0)
    size: int | None = Field(None, ge=0)
    interval_s: float = Field(60.0, ge=0, le=86_400)


class CacheStatAccepted(Schema):
    accepted: int


class CacheOut(Schema):
    cache: str
    hits: int
    misses: int
    evictions: int
    size: int | None
    hit_rate: float | None


class CachesOut(Schema):
    items: list[CacheOut]
    window_s: int
