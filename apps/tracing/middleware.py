"""coreadmin traces itself: each sampled request becomes a thread of spans of service
TRACING_SELF_SERVICE, so the server's own latency shows on its own execution tracker.

Stages (parent first):
    1_REQUEST           the whole request, name "<METHOD> <route>"
    1.1_AUTH            API key check (ninja's auth step)
    1.2_VALIDATION      parsing and validating the input
    1.3_SERVICE_CALL    the endpoint's body (services/selectors); for pages, the view
    1.4_RENDER          serialising the response schema

The API stages come from hooks on ninja's Operation (installed by TracingConfig.ready);
they cost one ContextVar read when the request is not sampled. The thread_id is the
caller's X-Request-ID if it sent one, else a fresh one; sampled responses carry it back
in X-Thread-Id. Spans are buffered per process and written by spans_ingest from a daemon
thread at most every TRACING_SELF_FLUSH_SECONDS (0 = at the end of each request, in it);
a failed write is logged and dropped, never failing a request. Spans still buffered when
a process exits are lost (telemetry, by choice).
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
import uuid
from collections.abc import Callable
from contextvars import ContextVar
from typing import Any

from django.conf import settings
from django.db import DatabaseError, connection
from django.http import HttpRequest, HttpResponse

from apps.tracing.sampling import is_sampled, sample_rate
from apps.tracing.services import SpanIn, spans_ingest
from coreadmin.clock import clock

logger = logging.getLogger("coreadmin.tracing")
SKIP_PREFIXES = ("/static/", "/healthz", "/readyz", "/metrics", "/favicon")
ROOT = "1_REQUEST"


class Recorder:
    def __init__(self, thread_id: str, service: str) -> None:
        self.thread_id = thread_id
        self.service = service
        self.spans: list[SpanIn] = []
        self.wall_start = clock.time()
        self.perf_start = time.perf_counter()
        self.service_call_from: float | None = None

    def at(self, perf: float) -> dt.datetime:
        return dt.datetime.fromtimestamp(self.wall_start + (perf - self.perf_start), tz=dt.UTC)

    def record(
        self,
        stage: str,
        begin: float,
        end: float,
        *,
        status: str = "ok",
        name: str = "",
        parent: str = ROOT,
    ) -> None:
        self.spans.append(
            SpanIn(
                thread_id=self.thread_id,
                stage=stage,
                name=name or stage,
                parent_stage=parent,
                service=self.service,
                started_at=self.at(begin),
                duration_ms=max(end - begin, 0.0) * 1000,
                status=status,
            )
        )


current: ContextVar[Recorder | None] = ContextVar("coreadmin_trace", default=None)

_buffer: list[SpanIn] = []
_buffer_lock = threading.Lock()
# monotonic time of the last write; -inf = never (monotonic starts near 0 at boot, so
# 0.0 would read as "just written" on a machine up for less than the interval).
_last_flush = [float("-inf")]


_flusher: list[threading.Thread] = []


def flush(force: bool = False) -> int:
    """Writes the buffered spans now if they are due (or ``force``)."""
    interval = settings.TRACING_SELF_FLUSH_SECONDS
    now = time.monotonic()
    with _buffer_lock:
        if not _buffer or (not force and interval and now - _last_flush[0] < interval):
            return 0
        batch = _buffer[:]
        _buffer.clear()
        _last_flush[0] = now
    try:
        # Already sampled by thread when the request started: keep every span.
        return spans_ingest(spans=batch, rate=1.0).accepted
    except Exception:
        logger.warning("could not store %d self-tracing spans", len(batch), exc_info=True)
        return 0


def _flush_in_background() -> None:
    try:
        flush(force=True)
    finally:
        connection.close()  # this thread's own connection


def flush_when_due() -> None:
    """With TRACING_SELF_FLUSH_SECONDS = 0, writes now (tests); otherwise, when the buffer
    is due, one daemon thread writes it, so no request waits for the write."""
    interval = settings.TRACING_SELF_FLUSH_SECONDS
    if not interval:
        flush()
        return
    if time.monotonic() - _last_flush[0] < interval:
        return
    with _buffer_lock:
        if _flusher and _flusher[0].is_alive():
            return
        thread = threading.Thread(target=_flush_in_background, name="self-tracing", daemon=True)
        _flusher[:] = [thread]
    thread.start()


def _route(request: HttpRequest) -> str:
    match = getattr(request, "resolver_match", None)
    route = getattr(match, "route", None) if match else None
    return "/" + route.lstrip("^").rstrip("$") if route else "unmatched"


class SelfTracingMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if not settings.TRACING_SELF_ENABLED or request.path.startswith(SKIP_PREFIXES):
            return self.get_response(request)
        thread_id = (request.headers.get("X-Request-ID") or "")[:200] or uuid.uuid4().hex
        service = settings.TRACING_SELF_SERVICE
        try:
            rate = sample_rate(service)
        except DatabaseError:  # self-tracing is best effort: an outage is the view's to
            return self.get_response(request)  # answer (503), not this middleware's (500)
        if not is_sampled(thread_id, rate):
            return self.get_response(request)
        recorder = Recorder(thread_id, service)
        token = current.set(recorder)
        begin = time.perf_counter()
        try:
            response = self.get_response(request)
        finally:
            current.reset(token)
        end = time.perf_counter()
        status = "error" if response.status_code >= 500 else "ok"
        if recorder.service_call_from is not None:  # the endpoint ran but rendered nothing
            recorder.record("1.3_SERVICE_CALL", recorder.service_call_from, end, status=status)
        if not request.path.startswith("/api/") and not recorder.spans:
            recorder.record("1.3_SERVICE_CALL", begin, end, status=status, name="view")
        recorder.record(
            ROOT, begin, end, status=status, name=f"{request.method} {_route(request)}", parent=""
        )
        response["X-Thread-Id"] = thread_id
        with _buffer_lock:
            _buffer.extend(recorder.spans)
        flush_when_due()
        return response


def install_ninja_hooks() -> None:
    """Wraps ninja's Operation steps so API requests record auth, validation, service
    call and render as separate stages."""
    from ninja.operation import Operation

    if getattr(Operation, "_coreadmin_traced", False):
        return
    run_checks = Operation._run_checks
    get_values = Operation._get_values
    to_response = Operation._result_to_response

    def traced_checks(self: Operation, request: HttpRequest) -> Any:
        recorder = current.get()
        if recorder is None:
            return run_checks(self, request)
        begin = time.perf_counter()
        result = run_checks(self, request)
        recorder.record("1.1_AUTH", begin, time.perf_counter(), status="error" if result else "ok")
        return result

    def traced_values(self: Operation, request: HttpRequest, *args: Any, **kw: Any) -> Any:
        recorder = current.get()
        if recorder is None:
            return get_values(self, request, *args, **kw)
        begin = time.perf_counter()
        try:
            values = get_values(self, request, *args, **kw)
        except Exception:
            recorder.record("1.2_VALIDATION", begin, time.perf_counter(), status="error")
            raise
        end = time.perf_counter()
        recorder.record("1.2_VALIDATION", begin, end)
        recorder.service_call_from = end
        return values

    def traced_response(self: Operation, request: HttpRequest, *args: Any, **kw: Any) -> Any:
        recorder = current.get()
        if recorder is None:
            return to_response(self, request, *args, **kw)
        begin = time.perf_counter()
        if recorder.service_call_from is not None:
            recorder.record("1.3_SERVICE_CALL", recorder.service_call_from, begin)
            recorder.service_call_from = None
        response = to_response(self, request, *args, **kw)
        recorder.record("1.4_RENDER", begin, time.perf_counter())
        return response

    Operation._run_checks = traced_checks  # type: ignore[method-assign]
    Operation._get_values = traced_values  # type: ignore[method-assign]
    Operation._result_to_response = traced_response  # type: ignore[method-assign]
    Operation._coreadmin_traced = True  # type: ignore[attr-defined]
