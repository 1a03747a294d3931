"""Execution tracker: ``track_stage`` / ``track_substage`` spans keyed by thread_id.

Sampling is the server's rule, decided per thread_id so every process agrees: a thread
is sampled iff the first 8 bytes of sha256(thread_id as UTF-8), read big-endian, are
below floor(rate * 2**64). Sampled spans are shipped in batches through the same Batcher
as BatchWriter and logs; every span (sampled or not) feeds the local per-thread
execution summary.
"""

from __future__ import annotations

import contextvars
import datetime as dt
import hashlib
import math
import threading
import time
from collections import OrderedDict
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from .batching import Batcher, Delivered
from .datasets import open_batcher

if TYPE_CHECKING:
    from .client import Client

__all__ = ["Tracker", "current_thread_id", "is_sampled"]

_thread_id: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "coreadmin_thread_id", default=None
)
_stage: contextvars.ContextVar[str | None] = contextvars.ContextVar("coreadmin_stage", default=None)


def is_sampled(thread_id: str, rate: float) -> bool:
    """The server's sampling rule, bit for bit."""
    if rate <= 0:
        return False
    threshold = math.floor(rate * 2**64)
    head = int.from_bytes(hashlib.sha256(thread_id.encode("utf-8")).digest()[:8], "big")
    return head < threshold


def current_thread_id() -> str | None:
    """The thread_id of the innermost ``track_stage`` (logs pick it up automatically)."""
    return _thread_id.get()


class _Span:
    def __init__(
        self, tracker: Tracker, thread_id: str | None, stage: str, name: str, sub: bool
    ) -> None:
        self.tracker = tracker
        self.thread_id = thread_id
        self.stage = stage
        self.name = name or stage
        self.sub = sub
        self.status = "ok"
        self.duration_ms = 0.0
        self._tokens: list[contextvars.Token[Any]] = []

    def __enter__(self) -> _Span:
        thread_id = self.thread_id or _thread_id.get()
        if thread_id is None:
            raise RuntimeError("track_substage needs an enclosing track_stage (or a thread_id)")
        self.thread_id = thread_id
        self.parent = _stage.get() if self.sub else None
        self._tokens = [_thread_id.set(thread_id), _stage.set(self.stage)]
        self.started_wall = time.time()
        self._started = time.perf_counter()
        return self

    def __exit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.duration_ms = (time.perf_counter() - self._started) * 1000
        if et is not None:
            self.status = "error"
        _stage.reset(self._tokens[1])
        _thread_id.reset(self._tokens[0])
        self.tracker._finish(self)

    async def __aenter__(self) -> _Span:
        return self.__enter__()

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.__exit__(et, e, tb)


class Tracker:
    def __init__(
        self,
        client: Client,
        *,
        sampling_rate: float | None = None,
        batch_size: int = 500,
        interval: float = 1.0,
        max_threads: int = 10_000,
        spool_dir: str | Path | None = None,
        fsync: bool = False,
    ) -> None:
        self.client = client
        self._rate = sampling_rate
        self.max_threads = max_threads
        self._summaries: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self._lock = threading.Lock()
        self.batcher: Batcher = open_batcher(
            client,
            "spans",
            client.service or "default",
            spool_dir,
            send=self._send,
            batch_size=batch_size,
            interval=interval,
            overflow="spool",
            fsync=fsync,
        )
        client._register_batcher(self.batcher)

    @property
    def sampling_rate(self) -> float:
        if self._rate is not None:
            return self._rate
        config = self.client.config
        return float(config.get("span_sample_rate", config.get("sampling_rate", 1.0)))

    @sampling_rate.setter
    def sampling_rate(self, rate: float) -> None:
        self._rate = rate

    def _send(self, spans: list[Any], batch_id: str) -> Delivered:
        body = self.client.transport.request(
            "POST", "/api/v1/spans", json={"batch_id": batch_id, "spans": spans}
        )
        # Spans the server's own sampling left out were delivered, not refused: they
        # count as written (the server decided by its rate, e.g. when ours is stale).
        accepted = int(body.get("accepted", len(spans)))
        return Delivered(written=accepted + int(body.get("sampled_out", 0)))

    def track_stage(self, thread_id: str, stage: str, name: str = "") -> _Span:
        """``with tracker.track_stage(thread_id, "2_FETCH"):`` (or ``async with``)."""
        return _Span(self, thread_id, stage, name, sub=False)

    def track_substage(self, stage: str, name: str = "", thread_id: str | None = None) -> _Span:
        """A child of the innermost open stage, in the same thread_id."""
        return _Span(self, thread_id, stage, name, sub=True)

    def _finish(self, span: _Span) -> None:
        assert span.thread_id is not None
        with self._lock:
            summary = self._summaries.get(span.thread_id)
            if summary is None:
                summary = {"thread_id": span.thread_id, "total_ms": 0.0, "stages": {}}
                self._summaries[span.thread_id] = summary
                while len(self._summaries) > self.max_threads:
                    self._summaries.popitem(last=False)
            stage = summary["stages"].setdefault(
                span.stage, {"count": 0, "total_ms": 0.0, "max_ms": 0.0, "errors": 0}
            )
            stage["count"] += 1
            stage["total_ms"] += span.duration_ms
            stage["max_ms"] = max(stage["max_ms"], span.duration_ms)
            stage["errors"] += span.status == "error"
            if not span.sub:
                summary["total_ms"] += span.duration_ms
        if is_sampled(span.thread_id, self.sampling_rate):
            self.batcher.put(
                {
                    "thread_id": span.thread_id,
                    "stage": span.stage,
                    "name": span.name,
                    "parent_stage": span.parent,
                    "service": self.client.service,
                    "started_at": dt.datetime.fromtimestamp(span.started_wall, dt.UTC).isoformat(),
                    "duration_ms": round(span.duration_ms, 3),
                    "status": span.status,
                }
            )

    def summary(self, thread_id: str) -> dict[str, Any] | None:
        """This process's view of one thread: total and per-stage count, time, errors."""
        with self._lock:
            found = self._summaries.get(thread_id)
            if found is None:
                return None
            stages = {k: dict(v) for k, v in found["stages"].items()}
            return {"thread_id": thread_id, "total_ms": found["total_ms"], "stages": stages}

    def flush(self, timeout: float | None = None) -> bool:
        return self.batcher.flush(timeout)
