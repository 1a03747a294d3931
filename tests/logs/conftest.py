from __future__ import annotations

import pytest

from apps.fleet.selectors import clear_service_config_cache
from apps.logs.partitions import forget_known_partitions
from apps.logs.services import forget_streams_written


@pytest.fixture(autouse=True)
def fresh_process_caches():
    """Partitions and streams created inside a test's rolled-back transaction must not
    be remembered by the next test."""
    forget_known_partitions()
    forget_streams_written()
    clear_service_config_cache()
    yield
    forget_known_partitions()
    forget_streams_written()
    clear_service_config_cache()


@pytest.fixture
def truncate_logs():
    """For transactional tests: logs_logline (unmanaged, partitioned) is not flushed
    between tests, so empty it afterwards."""
    yield
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE logs_logline")


def record(**fields):
    line = {
        "ts": "2026-09-21T14:13:00Z",
        "level": "info",
        "logger": "scraper.fetch",
        "message": "fetched page 3",
        "service": "reddit",
        "thread_id": "t-1",
        "context": {"status": 200},
    }
    line.update(fields)
    return line
