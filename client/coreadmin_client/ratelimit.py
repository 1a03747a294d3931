"""Fleet-wide rate limits: ``acquire`` waits for tokens, ``try_acquire`` never waits.

Each attempt is one ``POST /ratelimits/{key}/acquire``; a refusal carries
``retry_after_ms``, which ``acquire`` sleeps (plus up to 10% jitter, so a fleet refused
together does not retry together) before asking again. When the server cannot be
reached, ``fail_open=True`` (default) admits the call and counts it in
``fail_open_count``; ``fail_open=False`` raises the NetworkError / ServerError.
An unknown key raises NotFoundError (a configuration mistake, never retried).
"""

from __future__ import annotations

import logging
import random
import time
from typing import TYPE_CHECKING, Any

from .errors import NetworkError, RateLimitError, ServerError
from .transport import RetryPolicy

if TYPE_CHECKING:
    from .client import Client

__all__ = ["RateLimiter"]

logger = logging.getLogger("coreadmin_client.ratelimit")
_ONE_TRY = RetryPolicy(max_attempts=2, backoff_base=0.05, backoff_max=0.2)


class RateLimiter:
    def __init__(self, client: Client, *, fail_open: bool = True) -> None:
        self.client = client
        self.fail_open = fail_open
        self.fail_open_count = 0
        self._rng = random.Random()

    def _refused_for(self, key: str, body: dict[str, Any] | None) -> float | None:
        """None when granted, else seconds to wait before asking again."""
        if body is None:
            return None
        if body.get("allowed"):
            return None
        wait = max(0.001, float(body.get("retry_after_ms") or 1.0) / 1000)
        return wait * (1 + 0.1 * self._rng.random())

    def _unreachable(self, key: str, exc: Exception) -> None:
        if not self.fail_open:
            raise exc
        self.fail_open_count += 1
        logger.warning("rate limit %s: server unreachable (%s); failing open", key, exc)

    def _check(self, key: str, cost: int) -> dict[str, Any] | None:
        try:
            body: dict[str, Any] = self.client.transport.request(
                "POST", f"/api/v1/ratelimits/{key}/acquire", json={"cost": cost}, retry=_ONE_TRY
            )
        except (NetworkError, ServerError) as exc:
            self._unreachable(key, exc)
            return None
        return body

    async def _acheck(self, key: str, cost: int) -> dict[str, Any] | None:
        try:
            body: dict[str, Any] = await self.client.transport.arequest(
                "POST", f"/api/v1/ratelimits/{key}/acquire", json={"cost": cost}, retry=_ONE_TRY
            )
        except (NetworkError, ServerError) as exc:
            self._unreachable(key, exc)
            return None
        return body

    def try_acquire(self, key: str, cost: int = 1) -> bool:
        return self._refused_for(key, self._check(key, cost)) is None

    async def atry_acquire(self, key: str, cost: int = 1) -> bool:
        return self._refused_for(key, await self._acheck(key, cost)) is None

    def acquire(self, key: str, cost: int = 1, timeout: float | None = None) -> None:
        """Blocks until ``cost`` tokens are granted; RateLimitError after ``timeout`` s."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            wait = self._refused_for(key, self._check(key, cost))
            if wait is None:
                return
            if deadline is not None and time.monotonic() + wait > deadline:
                raise RateLimitError(429, "rate_limited", f"{key}: no tokens within {timeout} s")
            self.client.transport.sleep(wait)

    async def aacquire(self, key: str, cost: int = 1, timeout: float | None = None) -> None:
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            wait = self._refused_for(key, await self._acheck(key, cost))
            if wait is None:
                return
            if deadline is not None and time.monotonic() + wait > deadline:
                raise RateLimitError(429, "rate_limited", f"{key}: no tokens within {timeout} s")
            await self.client.transport.asleep(wait)
