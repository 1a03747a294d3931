"""The server's own log lines reach the store through BufferedStoreHandler."""

from __future__ import annotations

import logging
import threading

import pytest
import structlog

from apps.logs.models import LogLine
from apps.logs.services import log_lines_store_server
from coreadmin.logging import SHIPPER_DROPPED, BufferedStoreHandler
from coreadmin.redaction import REDACTED

pytestmark = pytest.mark.django_db


@pytest.fixture
def shipped():
    """A logger whose lines go only to a handler we drain by hand (no thread)."""
    handler = BufferedStoreHandler(
        log_lines_store_server, capacity=5, batch_size=100, start_thread=False
    )
    logger = logging.getLogger("coreadmin.test.shipping")
    logger.addHandler(handler)
    logger.propagate = False
    logger.setLevel(logging.INFO)
    yield handler, logger
    logger.removeHandler(handler)
    logger.propagate = True


def test_structlog_and_plain_lines_are_stored_redacted_with_their_context(shipped, clock):
    handler, logger = shipped
    structlog.get_logger("coreadmin.test.shipping").warning(
        "login by jane.doe@example.com", attempt=2, password="hunter2", thread_id="th-9"
    )
    try:
        raise ValueError("token=abcdef123456 rejected")
    except ValueError:
        logger.exception("call to http://bob:s3cret@proxy:8080 failed")
    assert handler.drain() == 2
    first, second = LogLine.objects.order_by("id")
    assert first.service == "coreadmin" and first.level_name == "warning"
    assert first.logger == "coreadmin.test.shipping" and first.thread_id == "th-9"
    assert first.message == f"login by {REDACTED}"
    assert first.context["attempt"] == 2 and first.context["password"] == REDACTED
    assert second.level_name == "error"
    assert second.message == f"call to http://bob:{REDACTED}@proxy:8080 failed"
    assert "ValueError" in second.traceback and "abcdef123456" not in second.traceback


def test_a_full_buffer_drops_new_lines_counts_them_and_says_so(shipped, clock):
    handler, logger = shipped
    before = SHIPPER_DROPPED.labels("buffer_full")._value.get()
    for i in range(8):
        logger.info("line %d", i)
    assert handler.dropped["buffer_full"] == 3
    assert SHIPPER_DROPPED.labels("buffer_full")._value.get() - before == 3
    handler.drain()
    lines = list(LogLine.objects.order_by("id"))
    assert [line.message for line in lines[:5]] == [f"line {i}" for i in range(5)]
    report = lines[5]
    assert report.level_name == "warning" and report.logger == "coreadmin.logging.shipper"
    assert "dropped 3 line(s)" in report.message
    assert report.context["dropped"] == {"buffer_full": 3}
    assert handler.drain() == 0 and LogLine.objects.count() == 6  # reported once


def test_a_failing_store_is_counted_and_reported_later(clock):
    failing = True

    def sink(records):
        if failing:
            raise RuntimeError("database unavailable")
        return log_lines_store_server(records)

    handler = BufferedStoreHandler(sink, capacity=10, start_thread=False)
    logger = logging.getLogger("coreadmin.test.failing")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.warning("first")
        logger.warning("second")
        handler.drain()
        assert handler.dropped["sink_error"] == 2
        failing = False
        logger.warning("third")
        handler.drain()
    finally:
        logger.removeHandler(handler)
        logger.propagate = True
    messages = list(LogLine.objects.order_by("id").values_list("message", flat=True))
    assert messages[0] == "third"
    assert "dropped 2 line(s): 2 (sink_error)" in messages[1]


def test_emit_never_waits_for_the_store(clock):
    """With the drain thread stuck in the sink, logging still returns at once: lines
    beyond the buffer are dropped and counted instead of waiting."""
    entered, release = threading.Event(), threading.Event()
    received: list[int] = []

    def stuck_sink(records):
        entered.set()
        release.wait(10)
        received.append(len(records))

    handler = BufferedStoreHandler(stuck_sink, capacity=3, batch_size=1, interval=0.01)
    logger = logging.getLogger("coreadmin.test.stuck")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.warning("wakes the thread")
        assert entered.wait(10)
        for i in range(10):
            logger.warning("line %d", i)  # returns although the sink is blocked
        assert handler.dropped["buffer_full"] == 7
    finally:
        release.set()
        logger.removeHandler(handler)
        logger.propagate = True
        handler.close()
    assert sum(received) >= 1


def test_lines_the_drain_thread_logs_itself_are_not_shipped(clock):
    handler = BufferedStoreHandler(lambda records: None, start_thread=False)
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "msg", None, None)
    handler._thread = threading.current_thread()
    handler.emit(record)
    handler._thread = None
    assert len(handler._buffer) == 0
    handler.emit(record)
    assert len(handler._buffer) == 1
