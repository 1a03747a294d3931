"""A thread-safe pool of httpx clients, each bound to a proxy leased from coreadmin.

Every request is one lease (``POST /proxies/lease`` for the service, the URL's target
and an optional sticky ``session``), one use, and one report
(``POST /proxies/leases/{id}/report``, sent by a background thread so the caller does not
wait). The server picks the proxy (rotation, per-target bans, caps, sticky sessions); the
pool keeps one httpx client per proxy so its connections are reused across leases: at most
``max_clients`` of them (the least recently used idle one is closed to make room, or the
caller waits up to ``wait_timeout``), each closed after ``idle_timeout`` seconds unused or
``max_age`` seconds. A lease's ``slow_down_ms`` (the server's pool-shrink hint) is waited
before the request.

Outcomes reported:

- ``banned``: the status is in ``ban_statuses`` (default 403, 429), or the target's
  ``ban_predicates[target](response)`` returned True (a ban page served with 200): the
  server then bans that proxy for that target only, so the next lease gets another one;
- ``timeout``: an httpx timeout; ``failure``: other transport errors or a 5xx;
- ``success``: anything else.

``session="abc"`` makes requests sticky: the server leases the same proxy for the same
session while it stays usable.

socks5 proxies (the lease's ``proxy_url`` is then ``socks5://user:pass@host:port``) need
httpx's SOCKS support: ``pip install "coreadmin-client[socks]"``. Without it, a request
leased a socks5 proxy raises httpx's ImportError (the lease is not reported). A SOCKS5
proxy that hangs up mid-handshake makes socksio raise an error httpx does not map; the
pool reports it as a ``failure`` and raises it as ``httpx.ProxyError``.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit

import httpx

from .batching import Batcher, Delivered
from .errors import ApiError, RateLimitError, ServerError

if TYPE_CHECKING:
    from .client import Client

__all__ = ["AsyncProxyPool", "ProxyPool"]

logger = logging.getLogger("coreadmin_client.proxies")

try:  # optional: the [socks] extra; httpx lets its errors through unmapped
    from socksio import SOCKSError as _SOCKSError
except ImportError:  # without the extra, no socks5 request gets as far as the handshake

    class _SOCKSError(Exception):  # type: ignore[no-redef]
        """Stands in for socksio's error when socksio is not installed (never raised)."""


def _as_httpx_error(exc: Exception) -> Exception:
    """socksio's handshake errors become httpx.ProxyError, so callers catch one family."""
    if isinstance(exc, _SOCKSError):
        error = httpx.ProxyError(f"SOCKS5 handshake failed: {exc}")
        error.__cause__ = exc
        return error
    return exc


BanPredicate = Callable[[httpx.Response], bool]
C = TypeVar("C", httpx.Client, httpx.AsyncClient)


@dataclass
class _Slot[C: (httpx.Client, httpx.AsyncClient)]:
    proxy_url: str
    http: C
    created: float
    last_used: float
    users: int = 1


@dataclass(frozen=True)
class _Use:
    lease_id: str
    proxy_id: int
    proxy_url: str
    slow_down_s: float


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
        self._slots: dict[str, _Slot[C]] = {}
        self._creating = 0
        self._cond = threading.Condition()
        self.outcomes = dict.fromkeys(("success", "failure", "timeout", "banned"), 0)
        self.leases = 0
        self.clients_created = 0
        self.reporter = Batcher(
            f"proxy-reports:{service}", self._send_reports, batch_size=50, interval=0.05
        )
        client._register_batcher(self.reporter)

    # -- bookkeeping (under the lock, no I/O) ---------------------------------------------
    def _expired(self, slot: _Slot[C], now: float) -> bool:
        return now - slot.last_used > self.idle_timeout or now - slot.created > self.max_age

    def _checkout(self, proxy_url: str) -> tuple[_Slot[C] | None, bool, list[C]]:
        """(slot, may_create, clients_to_close); (None, False, ...) means wait."""
        now = self.clock()
        doomed = [s for s in self._slots.values() if not s.users and self._expired(s, now)]
        for gone in doomed:
            del self._slots[gone.proxy_url]
        to_close = [s.http for s in doomed]
        slot = self._slots.get(proxy_url)
        if slot is not None:
            slot.users += 1
            return slot, False, to_close
        if len(self._slots) + self._creating < self.max_clients:
            self._creating += 1  # reserved until _add, so racing threads cannot overshoot
            return None, True, to_close
        idle = [s for s in self._slots.values() if not s.users]
        if idle:
            victim = min(idle, key=lambda s: s.last_used)
            del self._slots[victim.proxy_url]
            to_close.append(victim.http)
            self._creating += 1
            return None, True, to_close
        return None, False, to_close

    def _add(self, proxy_url: str, http: C) -> tuple[_Slot[C], C | None]:
        """Registers a new client; if another thread won the race, returns its slot and
        the new client to close."""
        now = self.clock()
        with self._cond:
            self._creating -= 1
            existing = self._slots.get(proxy_url)
            if existing is not None:
                existing.users += 1
                return existing, http
            slot = _Slot(proxy_url, http, now, now)
            self._slots[proxy_url] = slot
            self.clients_created += 1
            return slot, None

    def _abandon(self) -> None:
        """Gives back a reservation from _checkout whose client could not be made (e.g.
        socks5 without httpx[socks]), so the pool does not shrink."""
        with self._cond:
            self._creating -= 1
            self._cond.notify()

    def _use(self, lease: dict[str, Any]) -> _Use:
        with self._cond:
            self.leases += 1
        return _Use(
            str(lease["lease_id"]),
            int(lease["proxy_id"]),
            str(lease["proxy_url"]),
            float(lease.get("slow_down_ms") or 0) / 1000,
        )

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
        self,
        slot: _Slot[C],
        use: _Use,
        target: str,
        result: httpx.Response | Exception,
        started: float,
    ) -> None:
        outcome = self._classify(target, result)
        status = result.status_code if isinstance(result, httpx.Response) else None
        latency_ms = (time.perf_counter() - started) * 1000
        if not self.reporter.try_put((use.lease_id, outcome, latency_ms, status)):
            logger.warning("proxy report queue full; lease %s not reported", use.lease_id)
        with self._cond:
            self.outcomes[outcome] += 1
            slot.users -= 1
            slot.last_used = self.clock()
            self._cond.notify()

    def _send_reports(self, items: list[Any], batch_id: str) -> Delivered:
        done = 0
        for lease_id, outcome, latency_ms, status in items:
            body: dict[str, Any] = {"outcome": outcome, "latency_ms": round(latency_ms, 3)}
            if status is not None:
                body["status_code"] = status
            try:
                self.client.transport.request(
                    "POST", f"/api/v1/proxies/leases/{lease_id}/report", json=body
                )
            except ApiError as exc:
                if isinstance(exc, ServerError | RateLimitError):
                    raise
                logger.warning("report of lease %s refused: %s", lease_id, exc)
                continue
            done += 1
        return Delivered(written=done, queued=0)

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
                "busy": sum(1 for s in self._slots.values() if s.users),
                "clients_created": self.clients_created,
                "leases": self.leases,
                "outcomes": dict(self.outcomes),
            }


class ProxyPool(_PoolCore[httpx.Client]):
    """Sync pool: ``pool.get(url)``, ``pool.request(method, url, session=..., **httpx)``."""

    def _client_for(self, proxy_url: str) -> _Slot[httpx.Client]:
        deadline = time.monotonic() + self.wait_timeout
        with self._cond:
            while True:
                slot, may_create, to_close = self._checkout(proxy_url)
                for http in to_close:
                    http.close()
                if slot is not None:
                    return slot
                if may_create:
                    break
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"no proxy client free within {self.wait_timeout} s")
                self._cond.wait(left)
        try:
            http = httpx.Client(proxy=proxy_url, timeout=self.timeout)
        except BaseException:
            self._abandon()
            raise
        slot, spare = self._add(proxy_url, http)
        if spare is not None:
            spare.close()
        return slot

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
        lease = self.client.transport.request(
            "POST", "/api/v1/proxies/lease", json=self._lease_body(target, session)
        )
        use = self._use(lease)
        slot = self._client_for(use.proxy_url)
        if use.slow_down_s:
            self.client.transport.sleep(use.slow_down_s)
        started = time.perf_counter()
        result: httpx.Response | Exception
        try:
            result = slot.http.request(method, url, **kwargs)
        except (httpx.HTTPError, _SOCKSError) as exc:
            result = _as_httpx_error(exc)
        self._release(slot, use, target, result, started)
        if isinstance(result, Exception):
            raise result
        return result

    def get(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("GET", url, **kwargs)

    def close(self) -> None:
        self.reporter.flush(10)
        with self._cond:
            slots, self._slots = list(self._slots.values()), {}
        for slot in slots:
            slot.http.close()


class AsyncProxyPool(_PoolCore[httpx.AsyncClient]):
    """Async pool: ``await pool.get(url)``; same rules as ProxyPool."""

    async def _client_for(self, proxy_url: str) -> _Slot[httpx.AsyncClient]:
        deadline = time.monotonic() + self.wait_timeout
        while True:
            with self._cond:
                slot, may_create, to_close = self._checkout(proxy_url)
            for http in to_close:
                await http.aclose()
            if slot is not None:
                return slot
            if may_create:
                break
            if time.monotonic() > deadline:
                raise TimeoutError(f"no proxy client free within {self.wait_timeout} s")
            await asyncio.sleep(0.005)
        try:
            http = httpx.AsyncClient(proxy=proxy_url, timeout=self.timeout)
        except BaseException:
            self._abandon()
            raise
        slot, spare = self._add(proxy_url, http)
        if spare is not None:
            await spare.aclose()
        return slot

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
        lease = await self.client.transport.arequest(
            "POST", "/api/v1/proxies/lease", json=self._lease_body(target, session)
        )
        use = self._use(lease)
        slot = await self._client_for(use.proxy_url)
        if use.slow_down_s:
            await self.client.transport.asleep(use.slow_down_s)
        started = time.perf_counter()
        result: httpx.Response | Exception
        try:
            result = await slot.http.request(method, url, **kwargs)
        except (httpx.HTTPError, _SOCKSError) as exc:
            result = _as_httpx_error(exc)
        self._release(slot, use, target, result, started)
        if isinstance(result, Exception):
            raise result
        return result

    async def get(self, url: str, **kwargs: Any) -> httpx.Response:
        return await self.request("GET", url, **kwargs)

    async def aclose(self) -> None:
        await asyncio.to_thread(self.reporter.flush, 10)
        with self._cond:
            slots, self._slots = list(self._slots.values()), {}
        for slot in slots:
            await slot.http.aclose()
