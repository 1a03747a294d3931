"""The server's own two-tier cache.

L1 is an in-process LRU with a TTL per entry (``LruTtl``: an OrderedDict under one lock,
so it is thread-safe; its C implementation makes get/set cheaper than a lock around
cachetools.TTLCache, see bench/bench_caching.py). L2 is Redis through django-redis
(``django.core.cache.caches["default"]``), shared by every process.

``TwoTierCache.get_or_set(key, compute)`` is single-flight: when many threads of one
process miss the same key at once, one computes and the others wait for its value (or
its exception). Across processes a short Redis lock (SET NX with a TTL) makes the other
processes wait for the first one's L2 write instead of computing too, up to
``lock_seconds``, or until that lock is gone without a value (the leader failed), after
which they compute themselves (a stuck leader delays, never blocks).

A value deleted or changed in L2 can still be served by another process's L1 for up to
``l1_ttl`` seconds: keep l1_ttl short for data that must be fresh.

Counters (``stats()``): l1_hits, l2_hits, misses, evictions (L1 LRU evictions), expired,
sets, computes; ``publish_stats`` writes their deltas as cache-stats rows.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from asgiref.sync import sync_to_async
from django.core.cache import caches

from coreadmin.clock import clock

_MISSING: Any = object()


class LruTtl:
    """Thread-safe LRU with per-entry expiry. ``timer`` is injectable for tests."""

    def __init__(self, maxsize: int, ttl: float, timer: Callable[[], float] = clock.time) -> None:
        self.maxsize = maxsize
        self.ttl = ttl
        self.timer = timer
        self._data: OrderedDict[Any, tuple[float, Any]] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = self.misses = self.evictions = self.expired = 0

    def get(self, key: Any, default: Any = None) -> Any:
        with self._lock:
            entry = self._data.get(key)
            if entry is None:
                self.misses += 1
                return default
            if entry[0] <= self.timer():
                del self._data[key]
                self.expired += 1
                self.misses += 1
                return default
            self._data.move_to_end(key)
            self.hits += 1
            return entry[1]

    def set(self, key: Any, value: Any, ttl: float | None = None) -> None:
        expires = self.timer() + (self.ttl if ttl is None else ttl)
        with self._lock:
            self._data[key] = (expires, value)
            self._data.move_to_end(key)
            while len(self._data) > self.maxsize:
                self._data.popitem(last=False)
                self.evictions += 1

    def delete(self, key: Any) -> None:
        with self._lock:
            self._data.pop(key, None)

    def clear(self) -> None:
        with self._lock:
            self._data.clear()

    def __len__(self) -> int:
        return len(self._data)


@dataclass
class _Flight:
    done: threading.Event = field(default_factory=threading.Event)
    value: Any = None
    error: BaseException | None = None


class TwoTierCache:
    def __init__(
        self,
        namespace: str,
        *,
        l1_maxsize: int = 1024,
        l1_ttl: float = 5.0,
        l2_ttl: float = 300.0,
        lock_seconds: float = 10.0,
        backend: str = "default",
        timer: Callable[[], float] = clock.time,
        register: bool = True,
    ) -> None:
        self.namespace = namespace
        self.l1 = LruTtl(l1_maxsize, l1_ttl, timer)
        self.l2_ttl = l2_ttl
        self.lock_seconds = lock_seconds
        self.backend = backend
        self._flights: dict[str, _Flight] = {}
        self._async_flights: dict[str, asyncio.Future[Any]] = {}
        self._lock = threading.Lock()
        self.l2_hits = self.l2_misses = self.sets = self.computes = 0
        self._published: dict[str, int] = {}
        if register:  # publish_stats reports registered caches
            REGISTRY[namespace] = self

    # -- plumbing
    @property
    def l2(self) -> Any:
        return caches[self.backend]

    def _key(self, key: str) -> str:
        return f"{self.namespace}:{key}"

    def _count(self, name: str) -> None:
        with self._lock:
            setattr(self, name, getattr(self, name) + 1)

    # -- sync API
    def get(self, key: str, default: Any = None) -> Any:
        value = self.l1.get(key, _MISSING)
        if value is not _MISSING:
            return value
        return self._l2_get(key, default)

    def _l2_get(self, key: str, default: Any) -> Any:
        value = self.l2.get(self._key(key), _MISSING)
        if value is _MISSING:
            self._count("l2_misses")
            return default
        self._count("l2_hits")
        self.l1.set(key, value)
        return value

    def set(self, key: str, value: Any, ttl: float | None = None) -> None:
        self.l2.set(self._key(key), value, timeout=self.l2_ttl if ttl is None else ttl)
        self.l1.set(key, value, None if ttl is None else min(ttl, self.l1.ttl))
        self._count("sets")

    def delete(self, key: str) -> None:
        self.l2.delete(self._key(key))
        self.l1.delete(key)

    def get_or_set(self, key: str, compute: Callable[[], Any], ttl: float | None = None) -> Any:
        value = self.l1.get(key, _MISSING)
        if value is not _MISSING:
            return value
        with self._lock:
            flight = self._flights.get(key)
            leader = flight is None
            if leader:
                flight = self._flights[key] = _Flight()
        assert flight is not None
        if not leader:
            flight.done.wait()
            if flight.error is not None:
                raise flight.error
            return flight.value
        try:
            flight.value = self._fill(key, compute, ttl)
            return flight.value
        except BaseException as exc:
            flight.error = exc
            raise
        finally:
            with self._lock:
                del self._flights[key]
            flight.done.set()

    def _fill(self, key: str, compute: Callable[[], Any], ttl: float | None) -> Any:
        value = self._l2_get(key, _MISSING)
        if value is not _MISSING:
            return value
        lock_key = self._key(key) + ":lock"
        locked = self.l2.add(lock_key, 1, timeout=self.lock_seconds)
        if not locked:
            # Another process computes it: wait for its value in L2; stop waiting when its
            # lock is gone without a value (it failed) or after lock_seconds.
            deadline = time.monotonic() + self.lock_seconds
            while time.monotonic() < deadline:
                time.sleep(0.01)
                value = self.l2.get(self._key(key), _MISSING)
                if value is not _MISSING:
                    self._count("l2_hits")
                    self.l1.set(key, value)
                    return value
                if not self.l2.get(lock_key):
                    value = self.l2.get(self._key(key), _MISSING)  # set just before unlock?
                    if value is not _MISSING:
                        self.l1.set(key, value)
                        return value
                    break
        try:
            value = compute()
            self._count("computes")
            self.set(key, value, ttl)
            return value
        finally:
            if locked:
                self.l2.delete(lock_key)

    # -- async API (L1 inline; Redis and compute off the event loop)
    async def aget(self, key: str, default: Any = None) -> Any:
        value = self.l1.get(key, _MISSING)
        if value is not _MISSING:
            return value
        return await sync_to_async(self.get, thread_sensitive=False)(key, default)

    async def aset(self, key: str, value: Any, ttl: float | None = None) -> None:
        await sync_to_async(self.set, thread_sensitive=False)(key, value, ttl)

    async def adelete(self, key: str) -> None:
        await sync_to_async(self.delete, thread_sensitive=False)(key)

    async def aget_or_set(
        self, key: str, compute: Callable[[], Awaitable[Any]], ttl: float | None = None
    ) -> Any:
        """Single-flight per event loop: concurrent coroutines missing one key await one
        ``compute()`` coroutine."""
        value = self.l1.get(key, _MISSING)
        if value is not _MISSING:
            return value
        pending = self._async_flights.get(key)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._async_flights[key] = future
        try:
            value = await sync_to_async(self._l2_get, thread_sensitive=False)(key, _MISSING)
            if value is _MISSING:
                value = await compute()
                self._count("computes")
                await self.aset(key, value, ttl)
            future.set_result(value)
            return value
        except asyncio.CancelledError:
            future.cancel()  # waiters see the cancellation too and may retry
            raise
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: no "never retrieved" warning without waiters
            raise
        finally:
            del self._async_flights[key]

    # -- counters
    def stats(self) -> dict[str, int]:
        return {
            "l1_hits": self.l1.hits,
            "l2_hits": self.l2_hits,
            "misses": self.l2_misses,
            "evictions": self.l1.evictions,
            "expired": self.l1.expired,
            "sets": self.sets,
            "computes": self.computes,
            "size": len(self.l1),
        }

    def take_deltas(self) -> dict[str, int]:
        """Counter increases since the previous call (what publish_stats records)."""
        now = self.stats()
        with self._lock:
            deltas = {k: v - self._published.get(k, 0) for k, v in now.items() if k != "size"}
            self._published = now
        deltas["size"] = now["size"]
        return deltas


REGISTRY: dict[str, TwoTierCache] = {}


def clear_all_l1() -> None:
    """Empties every registered cache's L1 (tests, and after a deploy-time data fix)."""
    for cache in REGISTRY.values():
        cache.l1.clear()
