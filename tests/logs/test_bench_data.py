from __future__ import annotations

import pytest
from django.core.management import call_command

from apps.logs.models import LogLine
from apps.logs.partitions import partitions_existing
from apps.logs.selectors import LogFilter, log_lines_page

pytestmark = pytest.mark.django_db


def test_generate_bench_data_fills_day_partitions_that_the_page_queries_read(clock):
    call_command("generate_bench_data", "--log-lines", "3000", "--days", "3", stdout=None)
    assert LogLine.objects.count() == 3000
    assert len(partitions_existing()) == 3
    assert set(LogLine.objects.values_list("level", flat=True)) <= {10, 20, 30, 40, 50}
    lines, older = log_lines_page(LogFilter(q="checksum mismatch"), limit=2)
    assert lines and older and all("checksum mismatch" in line.message for line in lines)
    assert max(line.ts for line in LogLine.objects.all()) < clock.now()
    call_command("generate_bench_data", "--log-lines", "3000", "--days", "3", stdout=None)
    assert LogLine.objects.count() == 3000  # already there: kept


def test_generated_ids_continue_the_tables_sequence(scraper_api, clock):
    call_command("generate_bench_data", "--log-lines", "30", "--days", "1", stdout=None)
    from tests.logs.conftest import record

    assert scraper_api.post("/api/v1/logs", {"records": [record()]}).status_code == 202
    ids = list(LogLine.objects.order_by("id").values_list("id", flat=True))
    assert len(ids) == len(set(ids)) == 31
