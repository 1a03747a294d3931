"""The one batching mechanism behind BatchWriter, the log handler and span shipping.

Callers append items to a bounded in-memory queue; a background thread cuts batches
when ``batch_size`` items wait or ``interval`` seconds passed, and sends each batch under
one ``batch_id`` (retries reuse it, so the server never stores a batch twice). When the
server cannot be reached (network error, 5xx or 429 after the transport's retries) the
batch goes to the on-disk :class:`Spool` and the batcher turns *offline*: later batches
are spooled without waiting, and every ``replay_interval`` seconds the oldest spooled
batch is tried again; the first success turns it online and replays the rest in order.
A process that starts on a spool directory left by a dead one replays its batches.

Every item has exactly one fate, exposed by :attr:`Batcher.counts`::

    submitted = pending + written + queued + spooled + rejected + dead

- ``pending``: in memory (queued locally or in flight);
- ``written`` / ``queued``: acknowledged by the server (stored, or parked in its retry
  queue); counted in this process, replays of an earlier process's spool included;
- ``spooled``: on local disk awaiting replay (a gauge);
- ``rejected``: refused for good by the server (4xx other than 429), kept in
  ``rejected.jsonl`` in the spool directory;
- ``dead``: could be neither delivered nor spooled (no spool configured, disk error).

When the queue is full, ``overflow`` decides: ``"block"`` waits for room (optionally up
to ``block_timeout`` then raises), ``"raise"`` raises :class:`BackpressureError`,
``"spool"`` writes the item straight to disk (never blocks; for logs). Nothing is ever
dropped silently.
"""

from __future__ import annotations

import asyncio
import atexit
import logging
import threading
import time
import uuid
import weakref
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from .errors import (
    ApiError,
    BackpressureError,
    NetworkError,
    PayloadTooLargeError,
    RateLimitError,
    ServerError,
)
from .spool import Spool

__all__ = ["Batcher", "Delivered", "Overflow"]

logger = logging.getLogger("coreadmin_client.batching")
Overflow = Literal["block", "raise", "spool"]


@dataclass(frozen=True)
class Delivered:
    """What the server did with a batch: items stored and items parked for retry."""

    written: int
    queued: int = 0


SendFn = Callable[[list[Any], str], Delivered]
_UNREACHABLE = (NetworkError, ServerError, RateLimitError)


class Batcher:
    def __init__(
        self,
        name: str,
        send: SendFn,
        *,
        batch_size: int = 500,
        interval: float = 1.0,
        max_queue: int = 10_000,
        overflow: Overflow = "block",
        block_timeout: float | None = None,
        spool_dir: str | Path | None = None,
        replay_interval: float = 2.0,
    ) -> None:
        if overflow == "spool" and spool_dir is None:
            raise ValueError('overflow="spool" needs a spool_dir')
        self.name = name
        self._send = send
        self.batch_size = batch_size
        self.interval = interval
        self.max_queue = max_queue
        self.overflow = overflow
        self.block_timeout = block_timeout
        self.replay_interval = replay_interval
        self.spool = Spool(spool_dir) if spool_dir is not None else None
        self._queue: deque[Any] = deque()
        self._cond = threading.Condition()
        self._in_flight = 0
        self._flush_requested = False
        self._closed = False
        self._offline = False
        self._last_replay_try = 0.0
        self._replay_lock = threading.Lock()
        self._loss_logged_at = -1e9
        self._counts = dict.fromkeys(
            ("submitted", "written", "queued", "spooled", "rejected", "dead"), 0
        )
        if self.spool is not None:
            self._counts["spooled"] = self.spool.count_items()
            self._offline = bool(self._counts["spooled"])  # replay what a predecessor left
        self._thread = threading.Thread(target=self._run, name=f"coreadmin-{name}", daemon=True)
        self._thread.start()
        _live.add(self)

    # -- the caller's side ----------------------------------------------------------------
    @property
    def counts(self) -> dict[str, int]:
        """A consistent snapshot of every fate, plus ``pending`` (in memory)."""
        with self._cond:
            out = dict(self._counts)
            out["pending"] = len(self._queue) + self._in_flight
        return out

    def put(self, item: Any) -> None:
        """Enqueues one item; applies the overflow policy when the queue is full."""
        with self._cond:
            if self._closed:
                raise RuntimeError(f"{self.name} is closed")
            if len(self._queue) >= self.max_queue:
                if self.overflow == "raise":
                    raise BackpressureError(f"{self.name}: {self.max_queue} items are waiting")
                if self.overflow == "spool":
                    self._counts["submitted"] += 1
                    self._spool_locked([item], uuid.uuid4().hex)
                    return
                deadline = (
                    None if self.block_timeout is None else time.monotonic() + self.block_timeout
                )
                while len(self._queue) >= self.max_queue and not self._closed:
                    left = None if deadline is None else deadline - time.monotonic()
                    if left is not None and left <= 0:
                        raise BackpressureError(
                            f"{self.name}: no room after {self.block_timeout} s"
                        )
                    self._cond.wait(left)
            self._queue.append(item)
            self._counts["submitted"] += 1
            if len(self._queue) >= self.batch_size:
                self._cond.notify_all()

    def try_put(self, item: Any) -> bool:
        """Enqueues without ever blocking; False (nothing enqueued) when full."""
        with self._cond:
            if self._closed or len(self._queue) >= self.max_queue:
                return False
            self._queue.append(item)
            self._counts["submitted"] += 1
            if len(self._queue) >= self.batch_size:
                self._cond.notify_all()
            return True

    async def aput(self, item: Any) -> None:
        """The async form of :meth:`put`: blocking for room happens off the event loop."""
        if not self.try_put(item):
            await asyncio.to_thread(self.put, item)

    def flush(self, timeout: float | None = None) -> bool:
        """Sends (or spools) everything enqueued so far; True when nothing is pending."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            self._flush_requested = True
            self._cond.notify_all()
            while self._queue or self._in_flight:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return False
                self._cond.wait(left if left is not None else 0.5)
            return True

    async def aflush(self, timeout: float | None = None) -> bool:
        return await asyncio.to_thread(self.flush, timeout)

    def replay(self) -> int:
        """Tries the spooled batches now (in order); returns how many were delivered."""
        if self.spool is None:
            return 0
        with self._replay_lock:  # the background thread and a caller may both replay
            return self._replay_locked(self.spool)

    def _replay_locked(self, spool: Spool) -> int:
        delivered = 0
        for path in spool.files():
            try:
                batch_id, items = spool.read(path)
            except FileNotFoundError:
                continue
            except (ValueError, KeyError, TypeError):
                logger.error("%s: unreadable spool file %s set aside", self.name, path)
                path.rename(path.with_suffix(".corrupt"))
                continue
            try:
                result = self._send(items, batch_id)
            except _UNREACHABLE:
                with self._cond:
                    self._offline = True
                return delivered
            except ApiError as exc:
                self._reject(batch_id, items, exc, from_spool=True)
            else:
                with self._cond:
                    self._counts["spooled"] -= len(items)
                    self._credit(result, len(items))
            spool.remove(path)
            delivered += 1
        with self._cond:
            self._offline = False
        return delivered

    def close(self, timeout: float | None = 30.0) -> None:
        """Flushes, then stops the background thread. Safe to call twice."""
        if self._closed:
            return
        self.flush(timeout)
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._thread.join(timeout)
        if self._queue and self.spool is not None:  # flush timed out: keep them on disk
            with self._cond:
                items = list(self._queue)
                self._queue.clear()
                self._spool_locked(items, uuid.uuid4().hex)
        if self.spool is not None:
            self.spool.close()
        _live.discard(self)

    # -- the background thread ------------------------------------------------------------
    def _run(self) -> None:
        while True:
            with self._cond:
                deadline = time.monotonic() + self.interval
                while (
                    not self._closed
                    and not self._flush_requested
                    and len(self._queue) < self.batch_size
                    and not self._replay_due()
                ):
                    left = deadline - time.monotonic()
                    if left <= 0:
                        break
                    self._cond.wait(min(left, self.replay_interval))
                if self._closed and not self._queue:
                    return
                size = max(1, self.batch_size)
                batch = [self._queue.popleft() for _ in range(min(size, len(self._queue)))]
                self._in_flight = len(batch)
                if not self._queue:
                    self._flush_requested = False
                offline = self._offline
                self._cond.notify_all()  # room for blocked writers
            try:
                if self._replay_due() or (not offline and self.spool and self._counts["spooled"]):
                    self._last_replay_try = time.monotonic()
                    self.replay()
                    offline = self._offline
                if batch:
                    self._deliver(batch, uuid.uuid4().hex, offline)
            except Exception:  # the thread must survive anything
                logger.exception("%s: unexpected error in the batching thread", self.name)
                if batch and self._in_flight:
                    with self._cond:
                        self._in_flight = 0
                        self._spool_locked(batch, uuid.uuid4().hex)
            finally:
                with self._cond:
                    self._in_flight = 0
                    self._cond.notify_all()

    def _replay_due(self) -> bool:
        return (
            self._offline
            and self.spool is not None
            and time.monotonic() - self._last_replay_try >= self.replay_interval
        )

    def _deliver(self, batch: list[Any], batch_id: str, offline: bool) -> None:
        """Sends one batch; every outcome is counted in the same critical section that
        takes it out of ``in flight``, so a counts snapshot never sees it twice."""
        if offline:
            with self._cond:
                self._in_flight = 0
                self._spool_locked(batch, batch_id)
            return
        try:
            result = self._send(batch, batch_id)
        except _UNREACHABLE as exc:
            if self.spool is not None:
                logger.warning("%s: unreachable (%s); spooling %d", self.name, exc, len(batch))
            with self._cond:
                self._in_flight = 0
                self._offline = True
                self._last_replay_try = time.monotonic()
                self._spool_locked(batch, batch_id)
        except PayloadTooLargeError as exc:
            if len(batch) == 1:
                self._reject(batch_id, batch, exc, from_spool=False)
                return
            # Over the server's maximum: halve (and remember the smaller size). The halves
            # get ids derived from this one, so their own retries stay idempotent.
            half = len(batch) // 2
            with self._cond:
                self.batch_size = min(self.batch_size, half)
                self._in_flight = len(batch) - half
            logger.warning("%s: batch of %d too large; halving", self.name, len(batch))
            self._deliver(batch[:half], f"{batch_id}.0", offline)
            with self._cond:
                self._in_flight = len(batch) - half
            self._deliver(batch[half:], f"{batch_id}.1", self._offline)
        except ApiError as exc:
            self._reject(batch_id, batch, exc, from_spool=False)
        else:
            with self._cond:
                self._in_flight = 0
                self._credit(result, len(batch))

    def _credit(self, result: Delivered, size: int) -> None:
        written = min(result.written, size)
        queued = min(result.queued, size - written)
        self._counts["written"] += written
        self._counts["queued"] += queued
        self._counts["rejected"] += size - written - queued

    def _reject(self, batch_id: str, items: list[Any], exc: ApiError, *, from_spool: bool) -> None:
        logger.error("%s: server refused batch %s for good: %s", self.name, batch_id, exc)
        if self.spool is not None:
            self.spool.append_rejected(batch_id, items, f"{exc.status} {exc.code}: {exc.message}")
        with self._cond:
            if from_spool:
                self._counts["spooled"] -= len(items)
            else:
                self._in_flight = 0
            self._counts["rejected"] += len(items)

    def _spool_locked(self, items: list[Any], batch_id: str) -> None:
        """Caller holds the condition."""
        if self.spool is None:
            self._counts["dead"] += len(items)
            if time.monotonic() - self._loss_logged_at > 60:  # loud, but not a flood
                self._loss_logged_at = time.monotonic()
                logger.error(
                    "%s: server unreachable and no spool directory; %d items lost so far",
                    self.name,
                    self._counts["dead"],
                )
            return
        try:
            self.spool.put(batch_id, items)
        except (OSError, TypeError, ValueError):
            logger.exception("%s: could not spool %d items; they are lost", self.name, len(items))
            self._counts["dead"] += len(items)
        else:
            self._counts["spooled"] += len(items)


_live: weakref.WeakSet[Batcher] = weakref.WeakSet()


@atexit.register
def _flush_at_exit() -> None:
    for batcher in list(_live):
        try:
            batcher.close(timeout=10.0)
        except Exception:  # pragma: no cover - best effort at interpreter exit
            logger.exception("flushing %s at exit failed", batcher.name)
