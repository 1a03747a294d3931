"""``Client(base_url, api_key)``: the entry point to everything the scraper uses."""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from ._lifecycle import Closing
from .batching import Batcher, Overflow
from .cache import LRUCache
from .circuits import CircuitView, circuit_protected
from .datasets import BatchWriter
from .fleet import Ticker, apply_config, memory_mb
from .logs import LogHandler, LogShipper, StructlogProcessor
from .proxies import AsyncProxyPool, ProxyPool
from .ratelimit import RateLimiter
from .tracing import Tracker, _Span
from .transport import RetryPolicy, Transport

__all__ = ["Client", "default_client"]

_default: Client | None = None


def default_client() -> Client:
    """The first Client created with ``make_default=True`` (the default)."""
    if _default is None:
        raise RuntimeError("create a coreadmin_client.Client first (or pass client=...)")
    return _default


class Client(Closing):
    """Connection to one coreadmin server with one API key.

    ``service`` (default ``"default"``) names this scraper in logs, spans, cache stats,
    heartbeats and spool paths; ``instance`` defaults to ``<hostname>-<pid>``;
    ``max_staleness`` bounds how old the cached circuit state may be (see circuits.py).
    """

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        service: str = "",
        instance: str | None = None,
        version: str = "",
        timeout: float = 10.0,
        connect_timeout: float = 3.0,
        max_connections: int = 20,
        retry: RetryPolicy | None = None,
        max_staleness: float = 1.0,
        fail_open: bool = True,
        sleep: Callable[[float], None] | None = None,
        asleep: Callable[[float], Awaitable[None]] | None = None,
        make_default: bool = True,
    ) -> None:
        global _default
        extra: dict[str, Any] = {}
        if sleep is not None:
            extra["sleep"] = sleep
        if asleep is not None:
            extra["asleep"] = asleep
        self.transport = Transport(
            base_url,
            api_key,
            timeout=timeout,
            connect_timeout=connect_timeout,
            max_connections=max_connections,
            retry=retry,
            **extra,
        )
        self.base_url = self.transport.base_url
        self.service = service or "default"  # the server requires a service name
        self.instance = instance or f"{socket.gethostname()}-{os.getpid()}"
        self.version = version
        self.config: dict[str, Any] = {}
        self.max_staleness = max_staleness
        self.fail_open = fail_open
        self._lock = threading.RLock()  # the lazy features register under it
        self._batchers: list[Batcher] = []
        self._log_sinks: list[Any] = []
        self._circuits: CircuitView | None = None
        self._ratelimits: RateLimiter | None = None
        self._tracker: Tracker | None = None
        self._shipper: LogShipper | None = None
        self._ticker = Ticker()
        if make_default:
            _default = self

    # -- plumbing for the features --------------------------------------------------------
    def _register_batcher(self, batcher: Batcher) -> None:
        with self._lock:
            self._batchers.append(batcher)

    def _dataset_batchers(self) -> list[Batcher]:
        return [b for b in self._batchers if b.name.startswith("dataset:")]

    def _every(self, interval: float, fn: Callable[[], object]) -> None:
        self._ticker.every(interval, fn)

    # -- raw API ----------------------------------------------------------------------------
    def request(self, method: str, path: str, **kw: Any) -> Any:
        """Any API call (``/api/v1/...``) with the client's auth, retries and errors."""
        return self.transport.request(method, path, **kw)

    async def arequest(self, method: str, path: str, **kw: Any) -> Any:
        return await self.transport.arequest(method, path, **kw)

    def whoami(self) -> dict[str, Any]:
        return self.transport.request("GET", "/api/v1/whoami")  # type: ignore[no-any-return]

    async def awhoami(self) -> dict[str, Any]:
        return await self.transport.arequest("GET", "/api/v1/whoami")  # type: ignore[no-any-return]

    # -- circuits ---------------------------------------------------------------------------
    @property
    def circuits(self) -> CircuitView:
        if self._circuits is None:
            with self._lock:
                if self._circuits is None:
                    self._circuits = CircuitView(
                        self, max_staleness=self.max_staleness, fail_open=self.fail_open
                    )
        return self._circuits

    def circuit_protected(self, name: str, **kw: Any) -> circuit_protected:
        return circuit_protected(name, client=self, **kw)

    # -- rate limits ------------------------------------------------------------------------
    @property
    def ratelimits(self) -> RateLimiter:
        if self._ratelimits is None:
            self._ratelimits = RateLimiter(self, fail_open=self.fail_open)
        return self._ratelimits

    def acquire(self, key: str, cost: int = 1, timeout: float | None = None) -> None:
        self.ratelimits.acquire(key, cost, timeout)

    async def aacquire(self, key: str, cost: int = 1, timeout: float | None = None) -> None:
        await self.ratelimits.aacquire(key, cost, timeout)

    def try_acquire(self, key: str, cost: int = 1) -> bool:
        return self.ratelimits.try_acquire(key, cost)

    async def atry_acquire(self, key: str, cost: int = 1) -> bool:
        return await self.ratelimits.atry_acquire(key, cost)

    # -- batch writes -----------------------------------------------------------------------
    def batch_writer(
        self,
        dataset: str,
        *,
        batch_size: int | None = None,
        interval: float = 1.0,
        max_queue: int = 10_000,
        overflow: Overflow = "block",
        block_timeout: float | None = None,
        spool_dir: str | Path | None = None,
        replay_interval: float = 2.0,
        fsync: bool = False,
    ) -> BatchWriter:
        return BatchWriter(
            self,
            dataset,
            batch_size=batch_size,
            interval=interval,
            max_queue=max_queue,
            overflow=overflow,
            block_timeout=block_timeout,
            spool_dir=spool_dir,
            replay_interval=replay_interval,
            fsync=fsync,
        )

    # -- proxies ----------------------------------------------------------------------------
    def proxy_pool(self, service: str | None = None, **kw: Any) -> ProxyPool:
        return ProxyPool(self, service or self.service, **kw)

    def async_proxy_pool(self, service: str | None = None, **kw: Any) -> AsyncProxyPool:
        return AsyncProxyPool(self, service or self.service, **kw)

    # -- logs -------------------------------------------------------------------------------
    def log_shipper(self, **kw: Any) -> LogShipper:
        if self._shipper is None:
            with self._lock:
                if self._shipper is None:
                    self._shipper = LogShipper(self, **kw)
        return self._shipper

    def log_handler(self, level: int = logging.INFO) -> LogHandler:
        handler = LogHandler(self.log_shipper(), level)
        self._log_sinks.append(handler)
        return handler

    def structlog_processor(self, level: int = logging.INFO) -> StructlogProcessor:
        processor = StructlogProcessor(self.log_shipper(), level)
        self._log_sinks.append(processor)
        return processor

    # -- tracing ----------------------------------------------------------------------------
    @property
    def tracker(self) -> Tracker:
        if self._tracker is None:
            with self._lock:
                if self._tracker is None:
                    self._tracker = Tracker(self)
        return self._tracker

    def track_stage(self, thread_id: str, stage: str, name: str = "") -> _Span:
        return self.tracker.track_stage(thread_id, stage, name)

    def track_substage(self, stage: str, name: str = "", thread_id: str | None = None) -> _Span:
        return self.tracker.track_substage(stage, name, thread_id)

    # -- caches -----------------------------------------------------------------------------
    def cache(self, name: str, **kw: Any) -> LRUCache:
        return LRUCache(self, name, **kw)

    # -- fleet ------------------------------------------------------------------------------
    def _heartbeat_body(self, extra: dict[str, Any] | None) -> dict[str, Any]:
        return {
            "instance": self.instance,
            "service": self.service,
            "version": self.version,
            "memory_mb": round(memory_mb(), 1),
            "extra": extra or {},
        }

    def heartbeat(self, extra: dict[str, Any] | None = None) -> dict[str, Any]:
        """One heartbeat; applies and returns the config the server sent back."""
        body = self.transport.request(
            "POST", "/api/v1/fleet/heartbeat", json=self._heartbeat_body(extra)
        )
        config = dict(body.get("config") or {})
        apply_config(self, config)
        return config

    async def aheartbeat(self, extra: dict[str, Any] | None = None) -> dict[str, Any]:
        body = await self.transport.arequest(
            "POST", "/api/v1/fleet/heartbeat", json=self._heartbeat_body(extra)
        )
        config = dict(body.get("config") or {})
        apply_config(self, config)
        return config

    def start_heartbeat(
        self, interval: float = 15.0, extra: Callable[[], dict[str, Any]] | None = None
    ) -> None:
        """Heartbeats every ``interval`` s on the background ticker (the first one now)."""
        self._ticker.every(interval, lambda: self.heartbeat(extra() if extra else None))
        try:
            self.heartbeat(extra() if extra else None)
        except Exception as exc:  # the ticker keeps trying
            logging.getLogger("coreadmin_client.fleet").warning("first heartbeat: %s", exc)

    # -- lifecycle --------------------------------------------------------------------------
    def flush(self, timeout: float | None = None) -> bool:
        """Flushes every writer, log shipper, span and outcome queue of this client."""
        return all([b.flush(timeout) for b in list(self._batchers)])

    def close(self) -> None:
        global _default
        self._ticker.stop()
        for batcher in list(self._batchers):
            batcher.close()
        self.transport.close()
        if _default is self:
            _default = None

    async def aclose(self) -> None:
        import asyncio

        await asyncio.to_thread(self.close)
        await self.transport.aclose()
