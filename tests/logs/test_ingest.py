from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection

from apps.logs.models import LogLine
from apps.logs.selectors import drop_counts
from tests.fleet.helpers import configure_service
from tests.logs.conftest import record

pytestmark = pytest.mark.django_db

URL = "/api/v1/logs"


def stored() -> list[LogLine]:
    return list(LogLine.objects.order_by("id"))


def test_a_batch_is_accepted_and_stored(scraper_api, clock):
    response = scraper_api.post(URL, {"records": [record(message=f"line {i}") for i in range(3)]})
    assert response.status_code == 202
    assert response.json() == {"batch_id": None, "accepted": 3, "stored": 3, "dropped": 0}
    lines = stored()
    assert [line.message for line in lines] == ["line 0", "line 1", "line 2"]
    first = lines[0]
    assert first.ts == dt.datetime(2026, 9, 21, 14, 13, tzinfo=dt.UTC)
    assert (first.level, first.service, first.logger, first.thread_id) == (
        20,
        "reddit",
        "scraper.fetch",
        "t-1",
    )
    assert first.context == {"status": 200}


def test_lines_land_in_the_partition_of_their_day(scraper_api, clock):
    scraper_api.post(
        URL,
        {
            "records": [
                record(ts="2026-09-21T10:00:00Z"),
                record(ts="2026-09-20T23:59:59Z"),
            ]
        },
    )
    with connection.cursor() as cursor:
        cursor.execute("SELECT tableoid::regclass::text, count(*) FROM logs_logline GROUP BY 1")
        assert dict(cursor.fetchall()) == {
            "logs_logline_p20260921": 1,
            "logs_logline_p20260920": 1,
        }


def test_a_line_without_ts_gets_the_server_time_and_a_future_one_is_clamped(scraper_api, clock):
    scraper_api.post(URL, {"records": [record(ts=None), record(ts="2031-01-01T00:00:00Z")]})
    first, second = stored()
    assert first.ts == clock.now() and second.ts == clock.now()
    assert second.context["client_ts"].startswith("2031-01-01")


def test_lines_below_the_services_minimum_level_are_accepted_dropped_and_counted(
    scraper_api, clock
):
    configure_service(min_log_level="warning")
    body = {
        "records": [
            record(level="debug"),
            record(level="info"),
            record(level="warning", message="slow"),
            record(level="ERROR", message="boom"),
            record(level="info", service="twitter", message="other service keeps info"),
        ]
    }
    response = scraper_api.post(URL, body)
    assert response.status_code == 202
    assert response.json() == {"batch_id": None, "accepted": 5, "stored": 3, "dropped": 2}
    assert [line.message for line in stored()] == ["slow", "boom", "other service keeps info"]
    assert drop_counts() == [{"service": "reddit", "reason": "below_min_level", "count": 2}]
    scraper_api.post(URL, {"records": [record(level="debug")]})
    assert drop_counts()[0]["count"] == 3


def test_the_default_minimum_level_is_info(scraper_api, clock):
    response = scraper_api.post(URL, {"records": [record(level="debug")]})
    assert response.json() == {"batch_id": None, "accepted": 1, "stored": 0, "dropped": 1}


def test_a_line_already_past_its_retention_is_dropped_and_counted(scraper_api, clock):
    response = scraper_api.post(
        URL,
        {
            "records": [
                record(level="info", ts="2026-09-01T00:00:00Z"),
                record(level="error", ts="2026-09-01T00:00:00Z"),
            ]
        },
    )
    assert response.json() == {"batch_id": None, "accepted": 2, "stored": 1, "dropped": 1}
    assert stored()[0].level == 40
    assert drop_counts() == [{"service": "reddit", "reason": "expired", "count": 1}]


def test_level_aliases_are_understood(scraper_api, clock):
    levels = ["warn", "fatal", "exception", "CRITICAL"]
    scraper_api.post(URL, {"records": [record(level=level) for level in levels]})
    assert [line.level_name for line in stored()] == ["warning", "critical", "error", "critical"]


def test_an_unknown_level_is_a_validation_error_and_nothing_is_stored(scraper_api, clock):
    response = scraper_api.post(URL, {"records": [record(), record(level="loud")]})
    assert response.status_code == 422
    fields = response.json()["error"]["details"]["fields"]
    assert fields[0]["path"] == "records.1.level"
    assert not stored()


def test_a_batch_over_the_maximum_is_refused_with_413(scraper_api, settings, clock):
    settings.LOGS_MAX_BATCH = 3
    response = scraper_api.post(URL, {"records": [record()] * 4})
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"
    assert not stored()


def test_a_key_restricted_to_another_service_cannot_log_for_it(make_api_key, clock):
    from django.test import Client

    from tests.conftest import ApiClient

    api = ApiClient(Client(), make_api_key("scraper", service="twitter"))
    response = api.post(URL, {"records": [record(service="twitter"), record(service="reddit")]})
    assert response.status_code == 403
    assert not stored()


def test_nul_characters_are_removed_rather_than_failing_the_batch(scraper_api, clock):
    response = scraper_api.post(
        URL, {"records": [record(message="a\x00b", context={"k": "x\x00y", "p": "\\u0000"})]}
    )
    assert response.status_code == 202
    line = stored()[0]
    assert line.message == "ab" and line.context == {"k": "xy", "p": "\\u0000"}


def test_tabs_newlines_and_backslashes_are_stored_exactly(scraper_api, clock):
    """The rows reach Postgres as COPY text, where these characters are syntax."""
    message = "col1\tcol2\nsecond line\r\nC:\\temp\\new \\N \\. end\\"
    context = {
        "exception": 'Traceback:\n  File "x.py"\n\tValueError: a\\tb',
        "path\tkey": "\\N",
        "nested": {"list": ["\\", "\n", "\t"]},
    }
    response = scraper_api.post(
        URL,
        {
            "records": [
                record(
                    message=message,
                    context=context,
                    logger="a\tb",
                    thread_id="t\\1",
                    ts="2026-09-21T14:13:00.123456+02:00",
                ),
                record(message="after"),
            ]
        },
    )
    assert response.status_code == 202 and response.json()["stored"] == 2
    line, after = stored()
    assert (line.message, line.context, line.logger, line.thread_id) == (
        message,
        context,
        "a\tb",
        "t\\1",
    )
    assert line.ts == dt.datetime(2026, 9, 21, 12, 13, 0, 123456, tzinfo=dt.UTC)
    assert after.message == "after"


def test_a_very_long_message_is_truncated(scraper_api, settings, clock):
    settings.LOGS_MAX_MESSAGE_CHARS = 300
    scraper_api.post(URL, {"records": [record(message="x" * 1000)]})
    assert len(stored()[0].message) == 300


def test_logging_needs_a_key(anon_api):
    assert anon_api.post(URL, {"records": [record()]}).status_code == 401


def test_control_characters_in_a_service_name_are_a_validation_error(scraper_api, clock):
    response = scraper_api.post(URL, {"records": [record(service="red\x00dit")]})
    assert response.status_code == 422
    assert not stored()


def test_timestamps_with_any_offset_are_stored_in_utc(scraper_api, clock):
    response = scraper_api.post(URL, {"records": [record(ts="2026-09-21T23:00:00+17:28")]})
    assert response.status_code == 202
    assert stored()[0].ts == dt.datetime(2026, 9, 21, 5, 32, tzinfo=dt.UTC)
    listed = scraper_api.get(URL, since="0063-01-01T00:00:53-17:28", until="9999-12-31T23:00-14:00")
    assert listed.status_code == 200 and listed.json()["count"] == 1
