"""L1 cache: an in-process LRU with a TTL per entry, whose hit/miss/eviction counts are
reported to ``POST /api/v1/cache-stats`` every ``report_interval`` seconds (as deltas)."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from .client import Client

__all__ = ["LRUCache"]

T = TypeVar("T")
_MISSING = object()


class LRUCache:
    def __init__(
        self,
        client: Client | None,
        name: str,
        *,
        maxsize: int = 1024,
        ttl: float = 60.0,
        report_interval: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client = client
        self.name = name
        self.maxsize = maxsize
        self.ttl = ttl
        self.clock = clock
        self._data: OrderedDict[Hashable, tuple[float, Any]] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = self.misses = self.evictions = 0
        self._reported = (0, 0, 0, clock())
        if client is not None and report_interval > 0:
            client._every(report_interval, self.report)

    def __len__(self) -> int:
        return len(self._data)

    def get(self, key: Hashable, default: Any = None) -> Any:
        now = self.clock()
        with self._lock:
            entry = self._data.get(key, _MISSING)
            if entry is _MISSING or entry[0] <= now:  # type: ignore[index]
                if entry is not _MISSING:
                    del self._data[key]
                self.misses += 1
                return default
            self._data.move_to_end(key)
            self.hits += 1
            return entry[1]  # type: ignore[index]

    def set(self, key: Hashable, value: Any, ttl: float | None = None) -> None:
        expires = self.clock() + (self.ttl if ttl is None else ttl)
        with self._lock:
            self._data[key] = (expires, value)
            self._data.move_to_end(key)
            while len(self._data) > self.maxsize:
                self._data.popitem(last=False)
                self.evictions += 1

    def delete(self, key: Hashable) -> None:
        with self._lock:
            self._data.pop(key, None)

    def get_or_set(self, key: Hashable, factory: Callable[[], T], ttl: float | None = None) -> T:
        value = self.get(key, _MISSING)
        if value is _MISSING:
            value = factory()
            self.set(key, value, ttl)
        return value  # type: ignore[no-any-return]

    async def aget(self, key: Hashable, default: Any = None) -> Any:
        return self.get(key, default)

    async def aset(self, key: Hashable, value: Any, ttl: float | None = None) -> None:
        self.set(key, value, ttl)

    async def aget_or_set(
        self, key: Hashable, factory: Callable[[], Awaitable[T]], ttl: float | None = None
    ) -> T:
        value = self.get(key, _MISSING)
        if value is _MISSING:
            value = await factory()
            self.set(key, value, ttl)
        return value  # type: ignore[no-any-return]

    def stats(self) -> dict[str, Any]:
        with self._lock:
            total = self.hits + self.misses
            return {
                "cache": self.name,
                "hits": self.hits,
                "misses": self.misses,
                "evictions": self.evictions,
                "size": len(self._data),
                "hit_rate": self.hits / total if total else 0.0,
            }

    def _delta(self) -> dict[str, Any]:
        with self._lock:
            now = self.clock()
            hits, misses, evictions, since = self._reported
            body = {
                "cache": self.name,
                "hits": self.hits - hits,
                "misses": self.misses - misses,
                "evictions": self.evictions - evictions,
                "size": len(self._data),
                "interval_s": max(0.0, now - since),
            }
            self._reported = (self.hits, self.misses, self.evictions, now)
            return body

    def report(self) -> None:
        """Sends the counts since the last report (called periodically by the client)."""
        if self.client is None:
            return
        body = self._delta()
        body["service"] = self.client.service
        self.client.transport.request("POST", "/api/v1/cache-stats", json=body)

    async def areport(self) -> None:
        if self.client is None:
            return
        body = self._delta()
        body["service"] = self.client.service
        await self.client.transport.arequest("POST", "/api/v1/cache-stats", json=body)
