"""batch_id idempotency of POST /logs and POST /spans (coreadmin/idempotency.py): a
resend under one id stores nothing and answers as the first time; other items under it
are refused; concurrent requests with one id have one effect; old ids are forgotten."""

from __future__ import annotations

import datetime as dt
import threading
from typing import Any

import pytest
from django.db import connection
from django.test import override_settings

from apps.logs.models import LogBatch
from apps.logs.services import log_batch_submit, log_batches_prune
from apps.tracing.models import SpanBatch
from apps.tracing.services import SpanIn, span_batch_submit, span_batches_prune
from tests.core.test_errors import assert_error_shape
from tests.logs.conftest import record

ALL_SPANS = override_settings(FLEET_DEFAULT_SPAN_SAMPLE_RATE=1.0)


def count(sql: str, *params: Any) -> int:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchone()[0]


def lines(marker: str) -> int:
    return count("SELECT count(*) FROM logs_logline WHERE message LIKE %s", f"{marker}%")


def spans(stage: str) -> int:
    return count("SELECT count(*) FROM tracing_span WHERE stage = %s", stage)


def sketched(stage: str) -> int:
    return count("SELECT COALESCE(sum(count), 0) FROM tracing_stageminute WHERE stage = %s", stage)


def span(thread: str, stage: str, at: dt.datetime) -> dict[str, Any]:
    return {
        "thread_id": thread,
        "stage": stage,
        "service": "reddit",
        "started_at": at.isoformat(),
        "duration_ms": 12.5,
    }


@pytest.mark.django_db
def test_a_log_batch_sent_twice_is_stored_once_and_answered_alike(scraper_api, clock):
    body = {"batch_id": "logs-1", "records": [record(message=f"twice {i}") for i in range(4)]}
    first = scraper_api.post("/api/v1/logs", body)
    again = scraper_api.post("/api/v1/logs", body)
    assert first.status_code == again.status_code == 202
    assert first.json() == {"batch_id": "logs-1", "accepted": 4, "stored": 4, "dropped": 0}
    assert again.json() == first.json()
    assert lines("twice") == 4
    # The same lines with their keys in another order are the same batch.
    reordered = {
        "batch_id": "logs-1",
        "records": [dict(reversed(r.items())) for r in body["records"]],
    }
    assert scraper_api.post("/api/v1/logs", reordered).json() == first.json()
    assert lines("twice") == 4


@pytest.mark.django_db
def test_other_lines_under_a_used_log_batch_id_are_refused_and_change_nothing(scraper_api, clock):
    scraper_api.post("/api/v1/logs", {"batch_id": "logs-2", "records": [record(message="one")]})
    other = {"batch_id": "logs-2", "records": [record(message="other")]}
    error = assert_error_shape(scraper_api.post("/api/v1/logs", other), 409, "batch_id_conflict")
    assert error["details"] == {"batch_id": "logs-2"}
    assert lines("other") == 0 and lines("one") == 1


@pytest.mark.django_db
def test_a_log_batch_without_an_id_is_stored_each_time(scraper_api, clock):
    body = {"records": [record(message="no id")]}
    scraper_api.post("/api/v1/logs", body)
    scraper_api.post("/api/v1/logs", body)
    assert lines("no id") == 2
    assert LogBatch.objects.count() == 0


@pytest.mark.django_db
@ALL_SPANS
def test_a_span_batch_sent_twice_is_stored_and_sketched_once(scraper_api, clock):
    now = clock.now()
    body = {"batch_id": "spans-1", "spans": [span(f"t{i}", "9_TWICE", now) for i in range(5)]}
    first = scraper_api.post("/api/v1/spans", body)
    again = scraper_api.post("/api/v1/spans", body)
    assert first.status_code == again.status_code == 202
    assert first.json()["accepted"] == 5 and first.json()["batch_id"] == "spans-1"
    assert again.json() == first.json()
    assert spans("9_TWICE") == 5
    assert sketched("9_TWICE") == 5
    other = {"batch_id": "spans-1", "spans": [span("x", "9_OTHER", now)]}
    assert_error_shape(scraper_api.post("/api/v1/spans", other), 409, "batch_id_conflict")
    assert spans("9_OTHER") == 0 and sketched("9_OTHER") == 0


@pytest.mark.django_db
def test_batch_ids_are_forgotten_after_the_retention_and_not_before(clock, settings):
    settings.TELEMETRY_BATCH_ID_RETENTION_HOURS = 24
    now = clock.now()
    log_batch_submit(records=[{"service": "reddit", "message": "old"}], batch_id="old-logs")
    span_batch_submit(
        spans=[SpanIn("t", "9_OLD", "n", "", "reddit", now, 1.0, "ok")], batch_id="old-spans"
    )
    assert log_batches_prune(now=now + dt.timedelta(hours=23)) == 0
    assert span_batches_prune(now=now + dt.timedelta(hours=23)) == 0
    assert log_batches_prune(now=now + dt.timedelta(hours=25)) == 1
    assert span_batches_prune(now=now + dt.timedelta(hours=25)) == 1
    assert not LogBatch.objects.exists() and not SpanBatch.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_concurrent_log_batches_with_one_id_have_one_effect(clock):
    records = [{"service": "reddit", "message": f"race {i}"} for i in range(200)]
    start = threading.Barrier(6)
    results: list[Any] = [None] * 6

    def send(i: int) -> None:
        try:
            start.wait()
            results[i] = log_batch_submit(records=records, batch_id="race")
        except Exception as exc:  # the assertion below shows it
            results[i] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=send, args=(i,)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    try:
        assert all(r == results[0] for r in results), results
        assert results[0]["stored"] == 200
        assert lines("race") == 200
    finally:  # committed rows of an unmanaged table: the flush does not empty it
        count(
            "WITH gone AS (DELETE FROM logs_logline WHERE message LIKE 'race%%' "
            "RETURNING 1) SELECT count(*) FROM gone"
        )
