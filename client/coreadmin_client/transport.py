"""HTTP plumbing shared by every feature: one pooled httpx client (sync) and one per event
loop (async), timeouts, and retries with exponential backoff, full jitter and Retry-After.

Retried: connection errors, timeouts, 429 and 5xx. Never retried: any other 4xx (the
request itself is wrong; repeating it cannot help). Writes stay safe to retry because the
batch path carries a batch_id that the server deduplicates.
"""

from __future__ import annotations

import asyncio
import email.utils
import random
import threading
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from .errors import CoreadminError, NetworkError, error_for

__all__ = ["RetryPolicy", "Transport"]

RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})


@dataclass(frozen=True)
class RetryPolicy:
    """``max_attempts`` tries in all; before try n+1 the client waits a random time in
    [0, min(backoff_max, backoff_base * 2**n)] ("full jitter"), but never less than the
    server's Retry-After (itself capped at ``retry_after_max``)."""

    max_attempts: int = 4
    backoff_base: float = 0.2
    backoff_max: float = 10.0
    retry_after_max: float = 60.0

    def delay(self, attempt: int, retry_after: float | None, rng: random.Random) -> float:
        ceiling = min(self.backoff_max, self.backoff_base * (2**attempt))
        wait = rng.uniform(0, ceiling)
        if retry_after is not None:
            wait = max(wait, min(retry_after, self.retry_after_max))
        return wait


NO_RETRY = RetryPolicy(max_attempts=1)


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP-date)."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def _decode(response: httpx.Response) -> Any:
    if not response.content:
        return None
    try:
        return response.json()
    except ValueError:
        return None


class Transport:
    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        timeout: float = 10.0,
        connect_timeout: float = 3.0,
        max_connections: int = 20,
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
        asleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        user_agent: str = "coreadmin-client/0.1",
        seed: int | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.retry = retry or RetryPolicy()
        self.sleep = sleep
        self.asleep = asleep
        self._rng = random.Random(seed)
        self._headers = {"X-API-Key": api_key, "User-Agent": user_agent}
        self._timeout = httpx.Timeout(timeout, connect=connect_timeout)
        self._limits = httpx.Limits(
            max_connections=max_connections, max_keepalive_connections=max_connections
        )
        self._sync: httpx.Client | None = None
        self._async: dict[asyncio.AbstractEventLoop, httpx.AsyncClient] = {}
        self._lock = threading.Lock()

    # -- pooled clients -------------------------------------------------------------------
    def sync_client(self) -> httpx.Client:
        if self._sync is None:
            with self._lock:
                if self._sync is None:
                    self._sync = httpx.Client(
                        base_url=self.base_url,
                        headers=self._headers,
                        timeout=self._timeout,
                        limits=self._limits,
                    )
        return self._sync

    def async_client(self) -> httpx.AsyncClient:
        loop = asyncio.get_running_loop()
        client = self._async.get(loop)
        if client is None:
            # One pool per event loop: an httpx.AsyncClient is bound to the loop it ran on.
            for old in [lp for lp in self._async if lp.is_closed()]:
                del self._async[old]
            client = httpx.AsyncClient(
                base_url=self.base_url,
                headers=self._headers,
                timeout=self._timeout,
                limits=self._limits,
            )
            self._async[loop] = client
        return client

    def close(self) -> None:
        if self._sync is not None:
            self._sync.close()
            self._sync = None

    async def aclose(self) -> None:
        loop = asyncio.get_running_loop()
        client = self._async.pop(loop, None)
        if client is not None:
            await client.aclose()

    # -- requests -------------------------------------------------------------------------
    def _judge(
        self,
        label: str,
        result: httpx.Response | httpx.TransportError,
        attempt: int,
        policy: RetryPolicy,
    ) -> tuple[Any, float | None]:
        """(body, None) on success, (None, delay) to retry; raises when it is final."""
        retry_after: float | None = None
        error: CoreadminError
        if isinstance(result, httpx.TransportError):
            error = NetworkError(f"{label}: {result!r}")
        else:
            body = _decode(result)
            if result.status_code < 400:
                return body, None
            retry_after = parse_retry_after(result.headers.get("Retry-After"))
            error = error_for(result.status_code, body, retry_after)
            if result.status_code not in RETRYABLE_STATUSES:
                raise error
        if attempt + 1 >= policy.max_attempts:
            raise error
        return None, policy.delay(attempt, retry_after, self._rng)

    def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
        retry: RetryPolicy | None = None,
    ) -> Any:
        """Sends one API call, retrying as the policy says; returns the decoded body."""
        policy = retry or self.retry
        client = self.sync_client()
        for attempt in range(policy.max_attempts):
            result: httpx.Response | httpx.TransportError
            try:
                result = client.request(method, path, json=json, params=params)
            except httpx.TransportError as exc:
                result = exc
            body, delay = self._judge(f"{method} {path}", result, attempt, policy)
            if delay is None:
                return body
            self.sleep(delay)
        raise AssertionError("unreachable: _judge raises on the last attempt")

    async def arequest(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
        retry: RetryPolicy | None = None,
    ) -> Any:
        """The async form of :meth:`request`."""
        policy = retry or self.retry
        client = self.async_client()
        for attempt in range(policy.max_attempts):
            result: httpx.Response | httpx.TransportError
            try:
                result = await client.request(method, path, json=json, params=params)
            except httpx.TransportError as exc:
                result = exc
            body, delay = self._judge(f"{method} {path}", result, attempt, policy)
            if delay is None:
                return body
            await self.asleep(delay)
        raise AssertionError("unreachable: _judge raises on the last attempt")
