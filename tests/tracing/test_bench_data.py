from __future__ import annotations

import io

import pytest
from django.core.management import call_command
from django.db import connection

from apps.caching.selectors import cache_summaries
from apps.tracing.selectors import stage_stats, thread_spans

pytestmark = pytest.mark.django_db


def test_generated_bench_data_has_raw_spans_matching_sketches_and_cache_stats(clock):
    out = io.StringIO()
    call_command(
        "generate_span_data",
        "--spans",
        "2400",
        "--hours",
        "2",
        "--cache-days",
        "0.05",
        "--caches",
        "3",
        stdout=out,
    )
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM tracing_span")
        assert cursor.fetchone()[0] == 2400
    stats = {s.stage: s for s in stage_stats(window_s=3 * 3600)}
    assert len(stats) == 12 and {s.count for s in stats.values()} == {200}
    assert stats["2.4_HTTP_GET"].p50_ms > stats["2.1_L1_CACHE_LOOKUP"].p50_ms
    thread = thread_spans(thread_id="bench-7")
    assert [s.depth for s in thread.spans][:3] == [0, 1, 1]
    assert len(cache_summaries(window_s=3600)) == 3
    out = io.StringIO()
    call_command("generate_span_data", "--spans", "2400", "--hours", "2", "--reuse", stdout=out)
    assert "nothing generated" in out.getvalue()
