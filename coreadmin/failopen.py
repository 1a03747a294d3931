"""What circuits and rate limits do when Redis does not answer.

Both answer without Redis ("degraded"): circuits fail open, rate limits fall back to an
in-process bucket. Each degraded answer is counted in /metrics
(``coreadmin_degraded_answers_total{component=...}``). After a failure a process does not
try Redis again for REDIS_FAILOPEN_RETRY_SECONDS, so an outage costs one connection
timeout per process per interval instead of one per request.
"""

from __future__ import annotations

import threading

import redis
from django.conf import settings

from coreadmin.clock import clock
from coreadmin.metrics import DEGRADED

REDIS_ERRORS: tuple[type[Exception], ...] = (
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    redis.exceptions.BusyLoadingError,
    OSError,
)


class RedisBackoff:
    def __init__(self, component: str) -> None:
        self.component = component
        self._failed_at: float | None = None
        self._lock = threading.Lock()

    def should_try(self) -> bool:
        failed_at = self._failed_at
        if failed_at is None:
            return True
        now = clock.time()
        # A clock moved backwards (tests freeze it) also means "try again".
        return not (failed_at <= now < failed_at + settings.REDIS_FAILOPEN_RETRY_SECONDS)

    def failed(self) -> None:
        with self._lock:
            self._failed_at = clock.time()

    def succeeded(self) -> None:
        if self._failed_at is not None:
            with self._lock:
                self._failed_at = None

    def count_degraded(self) -> None:
        DEGRADED.labels(self.component).inc()

    def reset(self) -> None:
        with self._lock:
            self._failed_at = None
