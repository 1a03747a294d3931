"""``circuit_protected(name)``: the fleet's circuit breaker around a call.

The client keeps a local view of each circuit's fleet-wide state. A call on a circuit the
view knows to be closed costs a dict lookup and a clock read (microseconds); the view is
refreshed by ``POST /circuits/{name}/acquire`` when it is older than ``max_staleness``
seconds (default 1.0), so **a circuit opened or forced open elsewhere in the fleet stops
this process's calls within max_staleness seconds** (plus one round trip). A circuit seen
open is refused locally until its retry_after_ms passes or max_staleness, whichever
comes first; then the server is asked again (and may admit a half-open probe).

Outcomes are reported by a background thread (``POST /circuits/{name}/record``), so the
caller never waits for them: every failure, every probe's outcome, and at most one
success per circuit per max_staleness while the circuit is closed (enough to reset its
consecutive-failure count fleet-wide). If the server cannot be reached the decision
fails open (``fail_open=True``, counted in ``view.fail_open_count``) for max_staleness,
or raises CircuitOpenError with ``fail_open=False``.
"""

from __future__ import annotations

import contextvars
import functools
import inspect
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar, cast

from .batching import Batcher, Delivered
from .errors import CircuitOpenError, CoreadminError

if TYPE_CHECKING:
    from .client import Client

__all__ = ["CircuitView", "circuit_protected"]

logger = logging.getLogger("coreadmin_client.circuits")
F = TypeVar("F", bound=Callable[..., Any])
PASSING = frozenset({"closed", "forced_closed"})
REFUSING = frozenset({"open", "forced_open"})
COALESCED = PASSING | {"unknown"}  # successes reported at most once per max_staleness


@dataclass
class _Entry:
    state: str
    fetched_at: float
    retry_after_s: float = 0.0
    last_success_report: float = 0.0


class CircuitView:
    """The locally cached fleet state of every circuit one client has used."""

    def __init__(self, client: Client, *, max_staleness: float = 1.0, fail_open: bool = True):
        self.client = client
        self.max_staleness = max_staleness
        self.fail_open = fail_open
        self.fail_open_count = 0
        self._entries: dict[str, _Entry] = {}
        self._lock = threading.Lock()
        self.reporter = Batcher(
            "circuit-outcomes",
            self._send_outcomes,
            batch_size=100,
            interval=0.05,
            max_queue=10_000,
            overflow="raise",
        )
        client._register_batcher(self.reporter)

    # -- admission ------------------------------------------------------------------------
    def _cached(self, name: str, now: float) -> bool | None:
        """True/False when the cache can decide (raising on refusal), None to ask."""
        entry = self._entries.get(name)
        if entry is None:
            return None
        age = now - entry.fetched_at
        if age >= self.max_staleness:
            return None
        if entry.state in PASSING or entry.state == "unknown":
            return False  # admitted, not a probe
        if entry.state in REFUSING and age < entry.retry_after_s:
            raise CircuitOpenError(name, entry.state, (entry.retry_after_s - age) * 1000)
        return None

    def _apply_acquire(self, name: str, body: dict[str, Any], now: float) -> bool:
        state = str(body.get("state", "closed"))
        retry_after_s = float(body.get("retry_after_ms") or 0) / 1000
        with self._lock:
            old = self._entries.get(name)
            self._entries[name] = _Entry(
                state, now, retry_after_s, old.last_success_report if old else 0.0
            )
        if not body.get("allowed", False):
            raise CircuitOpenError(name, state, retry_after_s * 1000)
        return state == "half_open"

    def _unreachable(self, name: str, exc: CoreadminError, now: float) -> bool:
        if not self.fail_open:
            raise CircuitOpenError(name, "unknown", self.max_staleness * 1000) from exc
        logger.warning("circuit %s: server unreachable (%s); failing open", name, exc)
        with self._lock:
            self.fail_open_count += 1
            self._entries[name] = _Entry("unknown", now)
        return False

    def admit(self, name: str) -> bool:
        """Raises CircuitOpenError when refused; returns True when the call is a probe."""
        now = time.monotonic()
        decided = self._cached(name, now)
        if decided is not None:
            return decided
        try:
            body = self.client.transport.request("POST", _path(name, "acquire"), json={})
        except CoreadminError as exc:
            return self._unreachable(name, exc, now)
        return self._apply_acquire(name, body, now)

    async def aadmit(self, name: str) -> bool:
        now = time.monotonic()
        decided = self._cached(name, now)
        if decided is not None:
            return decided
        try:
            body = await self.client.transport.arequest("POST", _path(name, "acquire"), json={})
        except CoreadminError as exc:
            return self._unreachable(name, exc, now)
        return self._apply_acquire(name, body, now)

    # -- outcomes -------------------------------------------------------------------------
    def record(self, name: str, success: bool, duration_ms: float, probe: bool) -> None:
        """Queues the outcome for the background reporter (never blocks)."""
        entry = self._entries.get(name)
        if success and not probe and entry is not None and entry.state in COALESCED:
            now = time.monotonic()
            if now - entry.last_success_report < self.max_staleness:
                return  # nothing new to tell the fleet
            entry.last_success_report = now
        outcome = "success" if success else "failure"
        if not self.reporter.try_put((name, outcome, duration_ms)):
            logger.warning("circuit %s: outcome queue full; %s not reported", name, outcome)

    def _send_outcomes(self, items: list[Any], batch_id: str) -> Delivered:
        for name, outcome, duration_ms in items:
            body = self.client.transport.request(
                "POST",
                _path(name, "record"),
                json={"outcome": outcome, "duration_ms": round(duration_ms, 3)},
            )
            state = str(body.get("state", "closed"))
            with self._lock:
                entry = self._entries.get(name)
                if entry is not None and state != entry.state:
                    # A transition we caused: believe it now rather than at the next refresh.
                    entry.state = state
                    entry.fetched_at = time.monotonic()
                    entry.retry_after_s = (
                        float(body.get("recovery_timeout_ms") or 0) / 1000
                        if state in REFUSING
                        else 0.0
                    )
        return Delivered(written=len(items))

    def state(self, name: str) -> str | None:
        entry = self._entries.get(name)
        return entry.state if entry else None

    def forget(self, name: str | None = None) -> None:
        """Drops the cached view (of one circuit, or all): the next call asks the server."""
        with self._lock:
            if name is None:
                self._entries.clear()
            else:
                self._entries.pop(name, None)


def _path(name: str, action: str) -> str:
    return f"/api/v1/circuits/{name}/{action}"


_probe: contextvars.ContextVar[tuple[tuple[bool, float], ...]] = contextvars.ContextVar("cb_stack")


class circuit_protected:
    """Decorator and context manager (sync and async).

    ``fallback`` (decorator only) is called with the same arguments instead of the
    function when the circuit refuses the call, and, with ``fallback_on_error=True``,
    also when the call failed. ``failure_exceptions`` are the exceptions that count as a
    failure (default: any Exception); ``ignore`` ones propagate without counting.
    """

    def __init__(
        self,
        name: str,
        *,
        client: Client | None = None,
        fallback: Callable[..., Any] | None = None,
        fallback_on_error: bool = False,
        failure_exceptions: tuple[type[BaseException], ...] = (Exception,),
        ignore: tuple[type[BaseException], ...] = (),
    ) -> None:
        from .client import default_client

        self.name = name
        self._client = client
        self._default = default_client
        self.fallback = fallback
        self.fallback_on_error = fallback_on_error
        self.failure_exceptions = failure_exceptions
        self.ignore = ignore

    @property
    def view(self) -> CircuitView:
        return (self._client or self._default()).circuits

    def _failed(self, exc: BaseException | None) -> bool:
        return (
            exc is not None
            and isinstance(exc, self.failure_exceptions)
            and not isinstance(exc, self.ignore)
        )

    # -- decorator ------------------------------------------------------------------------
    def __call__(self, fn: F) -> F:
        name = self.name
        if inspect.iscoroutinefunction(fn):

            @functools.wraps(fn)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                view = self.view
                try:
                    probe = await view.aadmit(name)
                except CircuitOpenError:
                    if self.fallback is None:
                        raise
                    result = self.fallback(*args, **kwargs)
                    return await result if inspect.isawaitable(result) else result
                started = time.perf_counter()
                try:
                    value = await fn(*args, **kwargs)
                except BaseException as exc:
                    failed = self._failed(exc)
                    if failed:
                        view.record(name, False, _ms(started), probe)
                    if failed and self.fallback_on_error and self.fallback is not None:
                        result = self.fallback(*args, **kwargs)
                        return await result if inspect.isawaitable(result) else result
                    raise
                view.record(name, True, _ms(started), probe)
                return value

            return cast(F, async_wrapper)

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            view = self.view
            try:
                probe = view.admit(name)
            except CircuitOpenError:
                if self.fallback is None:
                    raise
                return self.fallback(*args, **kwargs)
            started = time.perf_counter()
            try:
                value = fn(*args, **kwargs)
            except BaseException as exc:
                failed = self._failed(exc)
                if failed:
                    view.record(name, False, _ms(started), probe)
                if failed and self.fallback_on_error and self.fallback is not None:
                    return self.fallback(*args, **kwargs)
                raise
            view.record(name, True, _ms(started), probe)
            return value

        return cast(F, wrapper)

    # -- context manager (raises CircuitOpenError on entry when refused) ------------------
    def _push(self, probe: bool) -> None:
        _probe.set((*_probe.get(()), (probe, time.perf_counter())))

    def _pop(self, exc: BaseException | None) -> None:
        *rest, (probe, started) = _probe.get()
        _probe.set(tuple(rest))
        if exc is None or self._failed(exc):
            self.view.record(self.name, exc is None, _ms(started), probe)

    def __enter__(self) -> circuit_protected:
        self._push(self.view.admit(self.name))
        return self

    def __exit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._pop(e)

    async def __aenter__(self) -> circuit_protected:
        self._push(await self.view.aadmit(self.name))
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._pop(e)


def _ms(started: float) -> float:
    return (time.perf_counter() - started) * 1000
