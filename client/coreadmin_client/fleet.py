"""Heartbeat and live configuration.

``client.start_heartbeat(interval=15)`` sends ``POST /api/v1/fleet/heartbeat`` every
``interval`` seconds from the client's background ticker; the ``config`` it returns is
applied at once, without a restart (see :func:`apply_config`).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .client import Client

__all__ = ["Ticker", "apply_config", "memory_mb"]

logger = logging.getLogger("coreadmin_client.fleet")


def memory_mb() -> float:
    """Resident set size of this process in MiB (Linux /proc; peak RSS elsewhere)."""
    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, IndexError):
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def apply_config(client: Client, config: dict[str, Any]) -> None:
    """Applies a heartbeat's config: ``batch_size`` to every BatchWriter,
    ``min_log_level`` (or ``log_level``) to every LogHandler / structlog processor,
    ``span_sample_rate`` (or ``sampling_rate``) to the tracker; the whole dict (rate limit
    policies, workers, retries...) stays readable in ``client.config``."""
    client.config.update(config)
    batch_size = config.get("batch_size")
    if isinstance(batch_size, int) and batch_size > 0:
        for batcher in client._dataset_batchers():
            batcher.batch_size = batch_size
    level = config.get("min_log_level", config.get("log_level"))
    if isinstance(level, str) and isinstance(logging.getLevelName(level.upper()), int):
        number = logging.getLevelName(level.upper())
        for sink in client._log_sinks:
            if isinstance(sink, logging.Handler):
                sink.setLevel(number)
            else:
                sink.level = number
    rate = config.get("span_sample_rate", config.get("sampling_rate"))
    if isinstance(rate, int | float) and client._tracker is not None:
        client._tracker.sampling_rate = float(rate)


class Ticker:
    """One daemon thread running periodic jobs (heartbeat, cache stats reports)."""

    def __init__(self) -> None:
        self._jobs: list[list[Any]] = []
        self._cond = threading.Condition()
        self._stopped = False
        self._thread: threading.Thread | None = None

    def every(self, interval: float, fn: Callable[[], object]) -> None:
        with self._cond:
            self._jobs.append([time.monotonic() + interval, interval, fn])
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="coreadmin-ticker", daemon=True
                )
                self._thread.start()
            self._cond.notify()

    def _run(self) -> None:
        while True:
            with self._cond:
                if self._stopped:
                    return
                now = time.monotonic()
                due = [job for job in self._jobs if job[0] <= now]
                for job in due:
                    job[0] = now + job[1]
                if not due:
                    wake = min(job[0] for job in self._jobs)
                    self._cond.wait(max(0.0, wake - now))
                    continue
            for _, _, fn in due:
                try:
                    fn()
                except Exception as exc:
                    logger.warning("periodic %s failed: %s", getattr(fn, "__qualname__", fn), exc)

    def stop(self) -> None:
        with self._cond:
            self._stopped = True
            self._cond.notify()
        if self._thread is not None:
            self._thread.join(5)
