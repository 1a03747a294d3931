"""Our Redis connection and Lua-script plumbing.

Hot shared state (circuits, rate-limit buckets, lease cursors) uses one shared
connection pool from django-redis, and every multi-step change is one Lua script
registered here (EVALSHA, loaded on first use). Keys are made with ``key(...)`` so they
all carry REDIS_KEY_PREFIX, which the tests use to find keys without a TTL.
"""

from __future__ import annotations

from typing import Any

import redis
from django.conf import settings
from django_redis import get_redis_connection


def connection() -> redis.Redis:
    return get_redis_connection("default")


def key(*parts: object) -> str:
    return settings.REDIS_KEY_PREFIX + ":".join(str(p) for p in parts)


class LuaScript:
    """A Lua script run atomically with EVALSHA (re-sent after a Redis restart)."""

    def __init__(self, source: str) -> None:
        self.source = source
        self._script: Any = None
        self._client: Any = None

    def __call__(self, keys: list[str], args: list[Any], client: redis.Redis | None = None) -> Any:
        client = client or connection()
        if self._script is None or self._client is not client:
            self._script = client.register_script(self.source)
            self._client = client
        return self._script(keys=keys, args=args, client=client)
