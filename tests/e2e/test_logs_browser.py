"""The logs page in a real browser: live tail rows arrive in place, context expands."""

from __future__ import annotations

import pytest
from django.db import connection

from apps.logs.partitions import forget_known_partitions
from apps.logs.services import forget_streams_written, log_lines_ingest


@pytest.fixture
def clean_logs():
    """The live server commits for real, and logs_logline (unmanaged, partitioned) is not
    flushed between tests: empty it afterwards."""
    yield
    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE logs_logline")
    forget_known_partitions()
    forget_streams_written()


def line(message: str, **fields):
    return {
        "service": "reddit",
        "level": "error",
        "logger": "scraper.fetch",
        "message": message,
        **fields,
    }


def test_live_tail_inserts_new_lines_at_the_top_and_context_expands(
    logged_in_page, live_server, console_errors, settings, clean_logs, artifacts
):
    settings.LOGS_TAIL_INTERVAL_SECONDS = 1
    log_lines_ingest(records=[line("already there")])
    page = logged_in_page
    page.goto(live_server.url + "/logs/?tail=1")
    page.wait_for_selector("#log-tail")
    assert page.locator("#log-rows tr.log-error").count() == 1
    log_lines_ingest(
        records=[line("arrived later", thread_id="thr-7", context={"exception": "Traceback: boom"})]
    )
    page.wait_for_selector("text=arrived later", timeout=15_000)
    rows = page.locator("#log-rows tr.log-error")
    assert rows.count() == 2
    assert "arrived later" in rows.nth(0).inner_text()  # newest on top, under the poller
    assert page.locator("#log-tail").count() == 1
    page.click("text=arrived later")
    assert page.locator("pre.log-traceback").first.is_visible()
    href = page.locator("#log-rows a[href^='/tracing/threads/']").first.get_attribute("href")
    assert href == "/tracing/threads/thr-7/"
    page.screenshot(path=str(artifacts / "logs-tail.png"), full_page=True)
    assert console_errors == []


def test_filters_apply_as_they_change(logged_in_page, live_server, console_errors, clean_logs):
    log_lines_ingest(records=[line("an error"), line("just info", level="info")])
    page = logged_in_page
    page.goto(live_server.url + "/logs/")
    page.select_option("select[name=level]", "info")
    page.wait_for_function("!document.body.innerText.includes('an error')", timeout=10_000)
    assert "just info" in page.locator("#log-results").inner_text()
    assert "level=info" in page.url
    assert console_errors == []
