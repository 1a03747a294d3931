"""structlog set-up: JSON in production, readable console in development, every line
passes through the redaction processor, the request id is bound by django-structlog."""

from __future__ import annotations

import datetime
import logging
import os
import sys
import threading
from collections import deque
from collections.abc import Callable
from typing import Any

import structlog
from django.utils.module_loading import import_string
from prometheus_client import Counter

from coreadmin.clock import clock
from coreadmin.redaction import redact_event_dict

SHARED_PROCESSORS: list[Any] = [
    structlog.contextvars.merge_contextvars,
    structlog.stdlib.add_log_level,
    structlog.stdlib.add_logger_name,
    structlog.processors.TimeStamper(fmt="iso", utc=True),
    structlog.processors.format_exc_info,
    redact_event_dict,
]


def configure_logging(*, level: str, fmt: str) -> dict[str, Any]:
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *SHARED_PROCESSORS,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {
            "structured": {
                "()": structlog.stdlib.ProcessorFormatter,
                "processors": [
                    structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                    renderer,
                ],
                # Lines from plain logging (Django, Celery, libraries) get the same
                # processors, redaction included.
                "foreign_pre_chain": SHARED_PROCESSORS,
            },
        },
        "handlers": {
            "console": {"class": "logging.StreamHandler", "formatter": "structured"},
        },
        "root": {"handlers": ["console"], "level": level},
        "loggers": {
            "django.server": {"level": "WARNING"},
        },
    }


# --- Shipping the server's own lines to the log store -------------------------------

SHIPPER_DROPPED = Counter(
    "coreadmin_log_shipper_dropped_total",
    "Server log lines the shipping buffer dropped, by reason (buffer_full, sink_error).",
    ["reason"],
)
SHIPPER_SHIPPED = Counter("coreadmin_log_shipper_shipped_total", "Server log lines stored.")
_LEVEL_NAMES = ((50, "critical"), (40, "error"), (30, "warning"), (20, "info"))
# Keys of a structlog event dict that become columns, or are structlog's own bookkeeping.
_RESERVED = {"event", "level", "logger", "timestamp", "_record", "_from_structlog"}
_plain_formatter = logging.Formatter()


def _level_name(levelno: int) -> str:
    for number, name in _LEVEL_NAMES:
        if levelno >= number:
            return name
    return "debug"


class BufferedStoreHandler(logging.Handler):
    """Sends this process's log lines to the log store without ever blocking the caller.

    ``emit`` only captures the record into a bounded buffer (a deque under a lock, no
    I/O); a daemon thread drains it every ``interval`` seconds, or sooner once
    ``batch_size`` lines wait, calling ``sink(records)`` (a dotted path, resolved on first
    use, so this module imports no app). When the buffer is full the new line is dropped
    and counted; the next drain stores a warning line saying how many were dropped (and
    prints it on stderr), and ``coreadmin_log_shipper_dropped_total`` counts them. A sink
    failure drops that batch, counted and reported the same way. Lines logged by the
    drain thread itself (the sink's own database work) are not shipped, so shipping
    cannot feed itself.
    """

    def __init__(
        self,
        sink: str | Callable[[list[dict[str, Any]]], Any],
        *,
        service: str = "coreadmin",
        capacity: int = 10_000,
        batch_size: int = 500,
        interval: float = 1.0,
        level: int | str = logging.INFO,
        start_thread: bool = True,
    ) -> None:
        super().__init__(level=level)
        self._sink_ref = sink
        self.service = service
        self.capacity = capacity
        self.batch_size = batch_size
        self.interval = interval
        self.start_thread = start_thread
        self._buffer: deque[dict[str, Any]] = deque()
        self._buffer_lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._pid = os.getpid()
        self.dropped: dict[str, int] = {"buffer_full": 0, "sink_error": 0}
        self._unreported: dict[str, int] = {"buffer_full": 0, "sink_error": 0}
        self.shipped = 0

    # -- called by logging, on the request's thread: capture only, never wait ----------
    def emit(self, record: logging.LogRecord) -> None:
        if self._thread is not None and threading.current_thread() is self._thread:
            return
        try:
            line = self._capture(record)
        except Exception:  # a line we cannot read is not worth a crash
            self.handleError(record)
            return
        if os.getpid() != self._pid:
            self._after_fork()
        with self._buffer_lock:
            if len(self._buffer) >= self.capacity:
                self._count_drop("buffer_full", 1)
                return
            self._buffer.append(line)
            backlog = len(self._buffer)
        if self.start_thread:
            self._ensure_thread()
            if backlog >= self.batch_size:
                self._wake.set()

    def _capture(self, record: logging.LogRecord) -> dict[str, Any]:
        context: dict[str, Any]
        if isinstance(record.msg, dict):
            # structlog: the event dict, already through SHARED_PROCESSORS (redacted).
            event = record.msg
            message = str(event.get("event", ""))
            context = {k: v for k, v in event.items() if k not in _RESERVED}
        else:
            message = record.getMessage()
            context = {}
            if record.exc_info:
                context["exception"] = _plain_formatter.formatException(record.exc_info)
        if record.stack_info:
            context["stack"] = record.stack_info
        thread_id = context.pop("thread_id", None)
        return {
            "ts": datetime.datetime.fromtimestamp(record.created, tz=datetime.UTC),
            "level": _level_name(record.levelno),
            "logger": record.name,
            "message": message,
            "service": self.service,
            "thread_id": str(thread_id) if thread_id is not None else "",
            "context": context,
        }

    def _count_drop(self, reason: str, count: int) -> None:
        self.dropped[reason] += count
        self._unreported[reason] += count
        SHIPPER_DROPPED.labels(reason).inc(count)

    def _after_fork(self) -> None:
        # A forked worker inherits the parent's buffer (the parent ships those lines)
        # but not its thread.
        self._pid = os.getpid()
        self._buffer_lock = threading.Lock()
        self._buffer.clear()
        self._thread = None
        self._wake = threading.Event()

    def _ensure_thread(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            with self._buffer_lock:
                if self._thread is None or not self._thread.is_alive():
                    self._thread = threading.Thread(
                        target=self._run, name="log-shipper", daemon=True
                    )
                    self._thread.start()

    def _run(self) -> None:
        from django.db import close_old_connections

        while not self._stop.is_set():
            self._wake.wait(self.interval)
            self._wake.clear()
            close_old_connections()  # this thread's own connection, like a request's
            while self.drain():
                pass

    # -- the drain: on the shipper thread (or the caller's, in tests and at exit) -------
    def drain(self) -> int:
        """Sends up to ``batch_size`` buffered lines (plus a report of any drops) to the
        sink; returns how many lines it took from the buffer."""
        with self._buffer_lock:
            batch = [self._buffer.popleft() for _ in range(min(self.batch_size, len(self._buffer)))]
            report = {k: v for k, v in self._unreported.items() if v}
            for reason in report:
                self._unreported[reason] = 0
        if report:
            batch.append(self._drop_report(report))
        if not batch:
            return 0
        try:
            self._sink()(batch)
        except Exception as exc:  # counted and reported, never raised
            lost = len(batch) - (1 if report else 0)
            with self._buffer_lock:
                self._count_drop("sink_error", lost)
                for reason, count in report.items():  # report them again next time
                    self._unreported[reason] += count
            sys.stderr.write(f"log shipper: {lost} line(s) not stored: {exc!r}\n")
            return 0  # try again at the next interval rather than spin through the buffer
        self.shipped += len(batch)
        SHIPPER_SHIPPED.inc(len(batch))
        return len(batch) - (1 if report else 0)

    def _drop_report(self, report: dict[str, int]) -> dict[str, Any]:
        total = sum(report.values())
        text = ", ".join(f"{count} ({reason})" for reason, count in sorted(report.items()))
        message = f"log shipper dropped {total} line(s): {text}"
        sys.stderr.write(message + "\n")
        return {
            "ts": clock.now(),
            "level": "warning",
            "logger": "coreadmin.logging.shipper",
            "message": message,
            "service": self.service,
            "thread_id": "",
            "context": {"dropped": report, "capacity": self.capacity},
        }

    def _sink(self) -> Callable[[list[dict[str, Any]]], Any]:
        sink = self._sink_ref
        if isinstance(sink, str):
            sink = self._sink_ref = import_string(sink)
        return sink

    def flush(self) -> None:
        if not self.start_thread:
            return
        self._wake.set()

    def close(self) -> None:
        """At exit: stop the thread and store what is left (best effort)."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=2)
        if os.getpid() == self._pid:
            try:
                while self.drain():
                    pass
            except Exception:  # exiting; nothing to tell anyone
                pass
        super().close()
