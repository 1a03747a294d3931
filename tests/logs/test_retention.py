from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from apps.logs.models import LogLine
from apps.logs.partitions import partitions_ahead, partitions_existing, retention_apply
from apps.logs.services import log_lines_ingest
from tests.fleet.helpers import configure_service

pytestmark = pytest.mark.django_db

START = dt.datetime(2026, 8, 1, 12, 0, tzinfo=dt.UTC)


@pytest.fixture
def forty_days_of_lines(clock):
    """One line per level per day, each ingested on its day (the clock moves)."""
    configure_service(min_log_level="debug")
    for day in range(40):
        clock.freeze(START + dt.timedelta(days=day))
        log_lines_ingest(
            records=[
                {"service": "reddit", "level": level, "message": f"{level} day {day}"}
                for level in ("debug", "info", "warning", "error", "critical")
            ]
        )
    return clock


def test_retention_drops_old_partitions_and_trims_levels_by_partition(forty_days_of_lines):
    clock = forty_days_of_lines  # now: START + 39 days = 2026-09-09 12:00
    assert len(partitions_existing()) == 40
    with CaptureQueriesContext(connection) as queries:
        result = retention_apply()
    # Days ending 30+ days ago (Aug 1 .. Aug 9) are gone as whole partitions.
    assert result.dropped == [f"logs_logline_p202608{d:02d}" for d in range(1, 10)]
    remaining = partitions_existing()
    assert min(remaining) == dt.date(2026, 8, 10) and len(remaining) == 31
    levels_per_day = {
        day: sorted(LogLine.objects.filter(ts__date=day).values_list("level", flat=True))
        for day in [
            dt.date(2026, 8, 10),
            dt.date(2026, 8, 25),
            dt.date(2026, 9, 1),
            dt.date(2026, 9, 6),
            dt.date(2026, 9, 7),
            dt.date(2026, 9, 9),
        ]
    }
    assert levels_per_day[dt.date(2026, 8, 10)] == [40, 50]  # 30 days kept for errors
    assert levels_per_day[dt.date(2026, 8, 25)] == [40, 50]  # warnings (14 d) trimmed
    assert levels_per_day[dt.date(2026, 9, 1)] == [30, 40, 50]  # info (7 d) trimmed
    assert levels_per_day[dt.date(2026, 9, 6)] == [20, 30, 40, 50]  # debug (2 d) trimmed
    assert levels_per_day[dt.date(2026, 9, 7)] == [10, 20, 30, 40, 50]  # ends after now-2d
    assert levels_per_day[dt.date(2026, 9, 9)] == [10, 20, 30, 40, 50]
    deletes = [q["sql"] for q in queries.captured_queries if q["sql"].startswith("DELETE")]
    assert deletes and all(sql.startswith("DELETE FROM logs_logline_p") for sql in deletes)
    assert result.trimmed  # trimmed rows are reported per partition
    clock.advance(3600)
    assert retention_apply().dropped == []  # idempotent


def test_retention_follows_the_configured_days(forty_days_of_lines, settings):
    settings.LOGS_RETENTION_DAYS = {**settings.LOGS_RETENTION_DAYS, "error": 60, "critical": 60}
    result = retention_apply()
    assert result.dropped == []
    assert LogLine.objects.filter(ts__date=dt.date(2026, 8, 1)).count() == 2


def test_partitions_are_created_ahead(clock):
    created = partitions_ahead()
    assert created == [dt.date(2026, 9, 21) + dt.timedelta(days=n) for n in range(4)]
    assert partitions_ahead() == []


def test_ingestion_recreates_a_partition_dropped_behind_its_back(scraper_api, clock):
    from tests.logs.conftest import record

    scraper_api.post("/api/v1/logs", {"records": [record()]})
    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE logs_logline_p20260921")
    response = scraper_api.post("/api/v1/logs", {"records": [record(message="again")]})
    assert response.status_code == 202
    assert list(LogLine.objects.values_list("message", flat=True)) == ["again"]
