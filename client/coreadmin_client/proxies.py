"""A thread-safe pool of httpx clients, each bound to a proxy leased from coreadmin.

``pool.get(url)`` finds an idle client leased for the URL's target (and sticky
``session``, if given), or leases a new proxy (``POST /proxies/lease``) while fewer than
``max_clients`` exist, evicting the least recently used idle client of another target
when full, or waiting up to ``wait_timeout`` for one to come back. Clients are closed
after ``idle_timeout`` seconds unused, after ``max_age`` seconds, or when their lease
expires. Every response or error is classified and reported
(``POST /proxies/leases/{id}/report``) by a background thread:

- ``banned``: status in ``ban_statuses`` (default 403, 429), or the target's
  ``ban_predicates[target](response)`` returned True; that client is dropped at once so
  the next request leases another proxy (the server will not lease this one for the
  target until its cooldown ends);
- ``timeout``: an httpx timeout; ``failure``: other transport errors or a 5xx;
- ``success``: anything else.

``session="abc"`` makes the requests sticky: the server leases the same proxy for the
same session while it stays usable, and the pool keeps that session's client apart.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit

import httpx

from .batching import Batcher, Delivered

if TYPE_CHECKING:
    from .client import Client

__all__ = ["AsyncProxyPool", "ProxyPool"]

BanPredicate = Callable[[httpx.Response], bool]
C = TypeVar("C", httpx.Client, httpx.AsyncClient)


@dataclass
class _Slot[C: (httpx.Client, httpx.AsyncClient)]:
    key: tuple[str, str | None]
    lease_id: str
    proxy_id: int
    proxy_url: str
    http: C
    created: float
    expires: float
    last_used: float = field(default=0.0)
    busy: bool = True


class _PoolCore[C: (httpx.Client, httpx.AsyncClient)]:
    def __init__(
        self,
        client: Client,
        service: str,
        *,
        max_clients: int = 10,
        idle_timeout: float = 60.0,
        max_age: float = 600.0,
        ban_statuses: frozenset[int] | set[int] = frozenset({403, 429}),
        ban_predicates: Mapping[str, BanPredicate] | None = None,
        timeout: float = 30.0,
        wait_timeout: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client = client
        self.service = service
        self.max_clients = max_clients
        self.idle_timeout = idle_timeout
        self.max_age = max_age
        self.ban_statuses = frozenset(ban_statuses)
        self.ban_predicates = dict(ban_predicates or {})
        self.timeout = timeout
        self.wait_timeout = wait_timeout
        self.clock = clock
        self._slots: list[_Slot[C]] = []
        self._reserved = 0
        self._cond = threading.Condition()
        self.outcomes = dict.fromkeys(("success", "failure", "timeout", "banned"), 0)
        self.leases = 0
        self.reporter = Batcher(
            f"proxy-reports:{service}", self._send_reports, batch_size=50, interval=0.05
        )
        client._register_batcher(self.reporter)

    # -- bookkeeping (under the lock, no I/O) ---------------------------------------------
    def _expired(self, slot: _Slot[C], now: float) -> bool:
        return (
            now - slot.last_used > self.idle_timeout
            or now - slot.created > self.max_age
            or now >= slot.expires
        )

    def _checkout(self, key: tuple[str, str | None]) -> tuple[_Slot[C] | None, bool, list[C]]:
        """(slot, must_lease, clients_to_close); (None, False, ...) means wait."""
        now = self.clock()
        doomed = [s for s in self._slots if not s.busy and self._expired(s, now)]
        for slot in doomed:
            self._slots.remove(slot)
        to_close = [s.http for s in doomed]
        for slot in self._slots:
            if not slot.busy and slot.key == key:
                slot.busy = True
                return slot, False, to_close
        if len(self._slots) + self._reserved < self.max_clients:
            self._reserved += 1
            return None, True, to_close
        idle = [s for s in self._slots if not s.busy]
        if idle:
            victim = min(idle, key=lambda s: s.last_used)
            self._slots.remove(victim)
            to_close.append(victim.http)
            self._reserved += 1
            return None, True, to_close
        return None, False, to_close

    def _add(self, key: tuple[str, str | None], lease: dict[str, Any], http: C) -> _Slot[C]:
        now = self.clock()
        expires = now + self.max_age
        if lease.get("expires_at"):
            remaining = dt.datetime.fromisoformat(lease["expires_at"]).timestamp() - time.time()
            expires = min(expires, now + remaining)
        slot = _Slot(
            key,
            str(lease["lease_id"]),
            int(lease["proxy_id"]),
            lease["proxy_url"],
            http,
            now,
            expires,
            now,
        )
        with self._cond:
            self._reserved -= 1
            self._slots.append(slot)
            self.leases += 1
        return slot

    def _unreserve(self) -> None:
        with self._cond:
            self._reserved -= 1
            self._cond.notify()

    def _classify(self, target: str, result: httpx.Response | Exception) -> str:
        if isinstance(result, httpx.TimeoutException):
            return "timeout"
        if isinstance(result, Exception):
            return "failure"
        if result.status_code in self.ban_statuses:
            return "banned"
        predicate = self.ban_predicates.get(target)
        if predicate is not None and predicate(result):
            return "banned"
        return "failure" if result.status_code >= 500 else "success"

    def _release(
        self, slot: _Slot[C], target: str, result: httpx.Response | Exception, started: float
    ) -> C | None:
        """Reports the outcome; returns the client to close if the slot was dropped."""
        outcome = self._classify(target, result)
        status = result.status_code if isinstance(result, httpx.Response) else None
        latency_ms = (time.perf_counter() - started) * 1000
        self.reporter.try_put((slot.lease_id, outcome, latency_ms, status))
        with self._cond:
            self.outcomes[outcome] += 1
            slot.busy = False
            slot.last_used = self.clock()
            dropped = outcome == "banned"
            if dropped:
                self._slots.remove(slot)
            self._cond.notify()
        return slot.http if dropped else None

    def _send_reports(self, items: list[Any], batch_id: str) -> Delivered:
        done = 0
        for lease_id, outcome, latency_ms, status in items:
            body: dict[str, Any] = {"outcome": outcome, "latency_ms": round(latency_ms, 3)}
            if status is not None:
                body["status_code"] = status
            self.client.transport.request(
                "POST", f"/api/v1/proxies/leases/{lease_id}/report", json=body
            )
            done += 1
        return Delivered(written=done)

    def _lease_body(self, target: str, session: str | None) -> dict[str, Any]:
        body = {"service": self.service, "target": target}
        if session:
            body["session"] = session
        return body

    @staticmethod
    def _target(url: str, target: str | None) -> str:
        return target or urlsplit(url).hostname or ""

    def stats(self) -> dict[str, Any]:
        with self._cond:
            return {
                "clients": len(self._slots),
                "busy": sum(s.busy for s in self._slots),
                "leases": self.leases,
                "outcomes": dict(self.outcomes),
            }


class ProxyPool(_PoolCore[httpx.Client]):
    """Sync pool: ``pool.get(url)``, ``pool.request(method, url, session=..., **httpx)``."""

    def _acquire(self, key: tuple[str, str | None]) -> _Slot[httpx.Client]:
        deadline = time.monotonic() + self.wait_timeout
        with self._cond:
            while True:
                slot, must_lease, to_close = self._checkout(key)
                for http in to_close:
                    http.close()
                if slot is not None or must_lease:
                    break
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"no proxy client free within {self.wait_timeout} s")
                self._cond.wait(left)
        if slot is not None:
            return slot
        try:
            lease = self.client.transport.request(
                "POST", "/api/v1/proxies/lease", json=self._lease_body(*key)
            )
            http = httpx.Client(proxy=lease["proxy_url"], timeout=self.timeout)
        except BaseException:
            self._unreserve()
            raise
        return self._add(key, lease, http)

    def request(
        self,
        method: str,
        url: str,
        *,
        target: str | None = None,
        session: str | None = None,
        **kwargs: Any,
    ) -> httpx.Response:
        target = self._target(url, target)
        slot = self._acquire((target, session))
        started = time.perf_counter()
        result: httpx.Response | Exception
        try:
            result = slot.http.request(method, url, **kwargs)
        except httpx.HTTPError as exc:
            result = exc
        doomed = self._release(slot, target, result, started)
        if doomed is not None:
            doomed.close()
        if isinstance(result, Exception):
            raise result
        return result

    def get(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("GET", url, **kwargs)

    def close(self) -> None:
        self.reporter.flush(10)
        with self._cond:
            slots, self._slots = self._slots, []
        for slot in slots:
            slot.http.close()


class AsyncProxyPool(_PoolCore[httpx.AsyncClient]):
    """Async pool: ``await pool.get(url)``; same rules as ProxyPool."""

    async def _acquire(self, key: tuple[str, str | None]) -> _Slot[httpx.AsyncClient]:
        deadline = time.monotonic() + self.wait_timeout
        while True:
            with self._cond:
                slot, must_lease, to_close = self._checkout(key)
            for http in to_close:
                await http.aclose()
            if slot is not None:
                return slot
            if must_lease:
                break
            if time.monotonic() > deadline:
                raise TimeoutError(f"no proxy client free within {self.wait_timeout} s")
            await asyncio.sleep(0.005)
        try:
            lease = await self.client.transport.arequest(
                "POST", "/api/v1/proxies/lease", json=self._lease_body(*key)
            )
            http = httpx.AsyncClient(proxy=lease["proxy_url"], timeout=self.timeout)
        except BaseException:
            self._unreserve()
            raise
        return self._add(key, lease, http)

    async def request(
        self,
        method: str,
        url: str,
        *,
        target: str | None = None,
        session: str | None = None,
        **kwargs: Any,
    ) -> httpx.Response:
        target = self._target(url, target)
        slot = await self._acquire((target, session))
        started = time.perf_counter()
        result: httpx.Response | Exception
        try:
            result = await slot.http.request(method, url, **kwargs)
        except httpx.HTTPError as exc:
            result = exc
        doomed = self._release(slot, target, result, started)
        if doomed is not None:
            await doomed.aclose()
        if isinstance(result, Exception):
            raise result
        return result

    async def get(self, url: str, **kwargs: Any) -> httpx.Response:
        return await self.request("GET", url, **kwargs)

    async def aclose(self) -> None:
        await asyncio.to_thread(self.reporter.flush, 10)
        with self._cond:
            slots, self._slots = self._slots, []
        for slot in slots:
            await slot.http.aclose()
