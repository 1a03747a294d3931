"""The one batching mechanism behind BatchWriter, the log handler and span shipping.

Callers append items; a background thread cuts batches when ``batch_size`` items wait or
``interval`` seconds passed, and sends each batch under one ``batch_id`` (retries and
replays reuse it, so the server never stores a batch twice).

With a spool directory every item goes through the **write-ahead journal** first
(journal.py): when ``put`` returns, the item is in an append-only file on local disk, so
a crash of the process (even ``SIGKILL``) loses nothing that was put. Before a batch is
sent its ``batch_id`` and the journal range it covers are journaled; when the server
answers it is marked done. A process that starts on the same spool directory resends
every batch that was not marked done under its original ``batch_id`` and batches what
was journaled but never batched.

When the server cannot be reached (network error, 5xx or 429 after the transport's
retries) the batch stays open in the journal (its items leave memory) and the batcher
turns *offline*: later batches are journaled without waiting, and every
``replay_interval`` seconds the oldest open batch is tried again; the first success
turns it online and replays the rest in order.

Every item has exactly one fate, exposed by :attr:`Batcher.counts`::

    submitted + recovered = pending + written + queued + spooled + rejected + dead

- ``pending``: in memory (queued locally or in flight), and in the journal;
- ``written`` / ``queued``: acknowledged by the server (stored, or parked in its retry
  queue);
- ``spooled``: on local disk only, awaiting (re)play (a gauge);
- ``recovered``: items a previous process left in the journal (open when this started);
- ``rejected``: refused for good by the server (4xx other than 429), kept in
  ``rejected.jsonl`` in the spool directory;
- ``dead``: could be neither delivered nor kept (no spool directory configured).

When the queue is full, ``overflow`` decides: ``"block"`` waits for room (optionally up
to ``block_timeout`` then raises), ``"raise"`` raises :class:`BackpressureError`,
``"spool"`` keeps the item in the journal only (never blocks; for logs; it is read back
from disk when its turn comes). Nothing is ever dropped silently.
"""

from __future__ import annotations

import asyncio
import atexit
import json
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
from .journal import Journal, OpenBatch
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
_FATES = ("submitted", "recovered", "written", "queued", "spooled", "rejected", "dead")


def _encode(item: Any) -> str:
    return json.dumps(item, separators=(",", ":"), ensure_ascii=False, default=str)


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
        fsync: bool = False,
        segment_bytes: int = 8 << 20,
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
        self.journal: Journal | None = None
        # Without a journal: the items. With one: (seq, JSON text) of the items
        # cut..cut+len-1; then ``_disk_only`` more items are in the journal only.
        self._queue: deque[Any] = deque()
        self._disk_only = 0
        self._cut = 0
        self._open: deque[OpenBatch] = deque()  # batches in the journal, not done, in order
        self._in_flight = 0
        self._in_flight_first: int | None = None
        self._current: OpenBatch | None = None  # the live batch, once journaled
        self._cond = threading.Condition()
        self._flush_requested = False
        self._closed = False
        self._offline = False
        self._last_replay_try = 0.0
        self._replay_lock = threading.Lock()
        self._loss_logged_at = -1e9
        self._counts = dict.fromkeys(_FATES, 0)
        if self.spool is not None:
            try:
                self.journal = Journal(
                    self.spool.directory, fsync=fsync, segment_bytes=segment_bytes
                )
            except BaseException:
                self.spool.close()
                raise
            self._adopt(self.journal)
        self._thread = threading.Thread(target=self._run, name=f"coreadmin-{name}", daemon=True)
        self._thread.start()
        _live.add(self)

    def _adopt(self, journal: Journal) -> None:
        """Takes over what a previous process left: its open batches as they are (same
        batch ids), and its never-batched items cut into new batches now."""
        found = journal.recovered
        self._open.extend(found.open_batches)
        run: list[int] = []
        for seq in found.unbatched:
            if run and (seq != run[-1] + 1 or len(run) >= self.batch_size):
                self._open.append(self._new_open_batch(journal, run))
                run = []
            run.append(seq)
        if run:
            self._open.append(self._new_open_batch(journal, run))
        self._open = deque(sorted(self._open, key=lambda o: o.first))
        left = sum(o.size for o in self._open)
        self._counts["recovered"] = self._counts["spooled"] = left
        self._offline = bool(self._open)  # replay at once (the first try is due now)
        self._cut = journal.next_seq
        if left:
            logger.warning("%s: %d items left by a previous process; replaying", self.name, left)

    @staticmethod
    def _new_open_batch(journal: Journal, seqs: list[int]) -> OpenBatch:
        batch = OpenBatch(uuid.uuid4().hex, seqs[0], seqs[-1], len(seqs))
        journal.mark_batch(batch.batch_id, batch.first, batch.last)
        return batch

    # -- the caller's side ----------------------------------------------------------------
    @property
    def counts(self) -> dict[str, int]:
        """A consistent snapshot of every fate, plus ``pending`` (in memory)."""
        with self._cond:
            out = dict(self._counts)
            out["pending"] = len(self._queue) + self._in_flight
        return out

    def _full(self) -> bool:
        """Caller holds the condition."""
        return len(self._queue) + self._disk_only >= self.max_queue

    def put(self, item: Any) -> None:
        """Enqueues one item (journaled first, when there is a spool directory); applies
        the overflow policy when the queue is full. An OSError from the journal (disk
        full) propagates: the item was not accepted."""
        text = _encode(item) if self.journal is not None else None
        with self._cond:
            if self._closed:
                raise RuntimeError(f"{self.name} is closed")
            if self._full() and self.overflow != "spool":
                if self.overflow == "raise":
                    raise BackpressureError(f"{self.name}: {self.max_queue} items are waiting")
                deadline = (
                    None if self.block_timeout is None else time.monotonic() + self.block_timeout
                )
                while self._full() and not self._closed:
                    left = None if deadline is None else deadline - time.monotonic()
                    if left is not None and left <= 0:
                        raise BackpressureError(
                            f"{self.name}: no room after {self.block_timeout} s"
                        )
                    self._cond.wait(left)
            self._enqueue_locked(item, text)

    def _enqueue_locked(self, item: Any, text: str | None) -> None:
        if self.journal is None or text is None:
            self._queue.append(item)
        else:
            seq = self.journal.append_record(text)
            if self._disk_only or len(self._queue) >= self.max_queue:  # overflow="spool"
                self._disk_only += 1
                self._counts["spooled"] += 1
            else:
                self._queue.append((seq, text))
        self._counts["submitted"] += 1
        if len(self._queue) + self._disk_only >= self.batch_size:
            self._cond.notify_all()

    def try_put(self, item: Any) -> bool:
        """Enqueues without ever blocking; False (nothing enqueued) when full."""
        text = _encode(item) if self.journal is not None else None
        with self._cond:
            if self._closed or (self._full() and self.overflow != "spool"):
                return False
            self._enqueue_locked(item, text)
            return True

    async def aput(self, item: Any) -> None:
        """The async form of :meth:`put`: blocking for room happens off the event loop."""
        if not self.try_put(item):
            await asyncio.to_thread(self.put, item)

    def flush(self, timeout: float | None = None) -> bool:
        """Sends (or journals as open batches) everything enqueued so far; True when
        nothing is pending."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            self._flush_requested = True
            self._cond.notify_all()
            while self._queue or self._in_flight or self._disk_only:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return False
                self._cond.wait(left if left is not None else 0.5)
            return True

    async def aflush(self, timeout: float | None = None) -> bool:
        return await asyncio.to_thread(self.flush, timeout)

    def replay(self) -> int:
        """Tries the open batches now (in order); returns how many were delivered."""
        if self.journal is None:
            return 0
        with self._replay_lock:  # the background thread and a caller may both replay
            return self._replay_locked(self.journal)

    def _replay_locked(self, journal: Journal) -> int:
        delivered = 0
        while True:
            with self._cond:
                if not self._open:
                    self._offline = False
                    return delivered
                batch = self._open[0]
            pairs = journal.read(batch.first, batch.last)
            if not pairs:  # its items were torn away by a crash: nothing to send
                journal.mark_done(batch.batch_id, "empty")
                with self._cond:
                    self._counts["spooled"] -= batch.size
                    self._open.popleft()
                continue
            items = [json.loads(text) for _, text in pairs]
            left = self._attempt(batch.batch_id, [s for s, _ in pairs], items, live=False)
            with self._cond:
                if self._open and self._open[0] is batch:
                    self._open.popleft()
                    self._open.extendleft(reversed(left))
                if left:
                    self._offline = True
                    return delivered
            delivered += 1
            self._compact()

    def close(self, timeout: float | None = 30.0) -> None:
        """Flushes, then stops the background thread. Safe to call twice. Whatever could
        not be sent stays in the journal for the next process on this spool directory."""
        if self._closed:
            return
        self.flush(timeout)
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._thread.join(timeout)
        with self._cond:
            if self._queue:  # the flush timed out
                if self.journal is None:
                    self._counts["dead"] += len(self._queue)
                else:
                    self._counts["spooled"] += len(self._queue)
                self._queue.clear()
        if self.journal is not None:
            self.journal.close()
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
                    and len(self._queue) + self._disk_only < self.batch_size
                    and not self._replay_due()
                ):
                    left = deadline - time.monotonic()
                    if left <= 0:
                        break
                    self._cond.wait(min(left, self.replay_interval))
                if self._closed and not self._queue and not self._disk_only:
                    return
                size = max(1, self.batch_size)
                popped = [self._queue.popleft() for _ in range(min(size, len(self._queue)))]
                from_disk = 0
                if not popped and self._disk_only:
                    from_disk = min(size, self._disk_only)
                    self._disk_only -= from_disk
                    self._counts["spooled"] -= from_disk
                first = self._cut
                self._cut += len(popped) + from_disk
                self._in_flight = len(popped) + from_disk
                self._in_flight_first = first if self._in_flight else None
                if not self._queue and not self._disk_only:
                    self._flush_requested = False
                offline = self._offline
                self._cond.notify_all()  # room for blocked writers
            try:
                if self._replay_due() or (not offline and self._open):
                    self._last_replay_try = time.monotonic()
                    self.replay()
                    offline = self._offline
                if self._in_flight:
                    self._deliver_cut(popped, first, from_disk, offline)
            except Exception:  # the thread must survive anything
                logger.exception("%s: unexpected error in the batching thread", self.name)
                with self._cond:
                    if self._in_flight and self.journal is None:
                        self._counts["dead"] += self._in_flight
                    elif self._in_flight and self.journal is not None:  # kept open
                        current = self._current
                        if current is None or current.first != first:
                            last = first + self._in_flight - 1
                            current = OpenBatch(uuid.uuid4().hex, first, last, self._in_flight)
                            self.journal.mark_batch(current.batch_id, first, last)
                        self._counts["spooled"] += self._in_flight
                        self._open.append(current)
                        self._offline = True
            finally:
                with self._cond:
                    self._in_flight = 0
                    self._in_flight_first = None
                    self._current = None
                    self._cond.notify_all()

    def _deliver_cut(self, popped: list[Any], first: int, from_disk: int, offline: bool) -> None:
        """The batch just cut: journal it as a batch, then send it (or, offline, leave
        it open in the journal for the replay)."""
        batch_id = uuid.uuid4().hex
        journal = self.journal
        if journal is None:
            if offline:  # pragma: no cover - offline needs a journal
                raise RuntimeError("offline without a journal")
            self._attempt(batch_id, [], popped, live=True)
            return
        last = first + len(popped) + from_disk - 1
        journal.mark_batch(batch_id, first, last)
        self._current = OpenBatch(batch_id, first, last, self._in_flight)
        if offline:
            with self._cond:
                self._open.append(OpenBatch(batch_id, first, last, self._in_flight))
                self._counts["spooled"] += self._in_flight
                self._in_flight = 0
            return
        pairs = journal.read(first, last) if from_disk else popped
        items = [json.loads(text) for _, text in pairs]
        left = self._attempt(batch_id, [s for s, _ in pairs], items, live=True)
        if left:
            with self._cond:
                self._open.extend(left)
                self._offline = True
                self._last_replay_try = time.monotonic()
        else:
            self._compact()

    def _replay_due(self) -> bool:
        return (
            self._offline
            and self.journal is not None
            and time.monotonic() - self._last_replay_try >= self.replay_interval
        )

    def _attempt(
        self, batch_id: str, seqs: list[int], items: list[Any], *, live: bool
    ) -> list[OpenBatch]:
        """Sends one batch (halving it on 413); returns what is still open afterwards
        (empty: done). Every outcome is counted in the same critical section that takes
        it out of ``in flight`` (``live``) or ``spooled`` (a replay), so a counts
        snapshot never sees an item twice."""
        journal = self.journal
        n = len(items)
        try:
            result = self._send(items, batch_id)
        except _UNREACHABLE as exc:
            if live:
                logger.warning("%s: unreachable (%s); keeping %d on disk", self.name, exc, n)
            with self._cond:
                if live:
                    self._in_flight -= n
                    if journal is None:
                        self._count_lost(n)
                    else:
                        self._counts["spooled"] += n
                self._offline = journal is not None
            if journal is None or not seqs:
                return []
            return [OpenBatch(batch_id, seqs[0], seqs[-1], n)]
        except PayloadTooLargeError as exc:
            if n <= 1:
                self._reject(batch_id, items, exc, live=live)
                return []
            # Over the server's maximum: halve (and remember the smaller size). The halves
            # get ids derived from this one, so their own retries stay idempotent.
            half = n // 2
            with self._cond:
                self.batch_size = min(self.batch_size, half)
            logger.warning("%s: batch of %d too large; halving", self.name, n)
            ids = (f"{batch_id}.0", f"{batch_id}.1")
            if journal is not None and seqs:
                journal.mark_split(
                    batch_id, [(ids[0], seqs[0], seqs[half - 1]), (ids[1], seqs[half], seqs[-1])]
                )
            left = self._attempt(ids[0], seqs[:half], items[:half], live=live)
            if left:  # unreachable now: the second half waits too, without trying
                rest = OpenBatch(ids[1], seqs[half], seqs[-1], n - half) if seqs else None
                with self._cond:
                    if live:
                        self._in_flight -= n - half
                        self._counts["spooled"] += n - half
                return left + ([rest] if rest else [])
            return self._attempt(ids[1], seqs[half:], items[half:], live=live)
        except ApiError as exc:
            self._reject(batch_id, items, exc, live=live)
            return []
        if journal is not None:
            journal.mark_done(batch_id, "written" if not result.queued else "queued")
        with self._cond:
            if live:
                self._in_flight -= n
            else:
                self._counts["spooled"] -= n
            self._credit(result, n)
        return []

    def _compact(self) -> None:
        journal = self.journal
        if journal is None or journal.segment_count() < 2:
            return
        with self._cond:
            low = self._cut
            if self._open:
                low = min(low, self._open[0].first)
            if self._in_flight_first is not None:
                low = min(low, self._in_flight_first)
        journal.compact(low)

    def _credit(self, result: Delivered, size: int) -> None:
        written = min(result.written, size)
        queued = min(result.queued, size - written)
        self._counts["written"] += written
        self._counts["queued"] += queued
        self._counts["rejected"] += size - written - queued

    def _reject(self, batch_id: str, items: list[Any], exc: ApiError, *, live: bool) -> None:
        logger.error("%s: server refused batch %s for good: %s", self.name, batch_id, exc)
        if self.spool is not None:
            self.spool.append_rejected(batch_id, items, f"{exc.status} {exc.code}: {exc.message}")
        if self.journal is not None:
            self.journal.mark_done(batch_id, "rejected")
        with self._cond:
            if live:
                self._in_flight -= len(items)
            else:
                self._counts["spooled"] -= len(items)
            self._counts["rejected"] += len(items)

    def _count_lost(self, n: int) -> None:
        """Caller holds the condition. Only without a spool directory."""
        self._counts["dead"] += n
        if time.monotonic() - self._loss_logged_at > 60:  # loud, but not a flood
            self._loss_logged_at = time.monotonic()
            logger.error(
                "%s: server unreachable and no spool directory; %d items lost so far",
                self.name,
                self._counts["dead"],
            )


_live: weakref.WeakSet[Batcher] = weakref.WeakSet()


@atexit.register
def _flush_at_exit() -> None:
    for batcher in list(_live):
        try:
            batcher.close(timeout=10.0)
        except Exception:  # pragma: no cover - best effort at interpreter exit
            logger.exception("flushing %s at exit failed", batcher.name)
