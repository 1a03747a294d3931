from __future__ import annotations

import pytest
from django.db import connection

from apps.datasets.models import RetryItem
from apps.datasets.selectors import RetryFilters, retry_items, retry_tab_counts

pytestmark = pytest.mark.django_db


def test_the_substring_filter_is_served_by_the_trigram_indexes(posts, clock):
    now = clock.now()
    RetryItem.objects.bulk_create(
        RetryItem(
            dataset=posts,
            record={"id": f"r{i}", "title": f"post number {i} about topic {i % 97}"},
            code="validation_error",
            message=f"score: expected an integer, got 'value{i}'",
            max_attempts=4,
            status="dead",
            next_attempt_at=now,
            failed_at=now,
            created_at=now,
        )
        for i in range(4000)
    )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE datasets_retryitem")
        for index in ("datasets_retry_msg_trgm", "datasets_retry_rec_trgm"):  # what VACUUM does
            cursor.execute("SELECT gin_clean_pending_list(%s::regclass)", [index])
    plan = retry_items(RetryFilters(tab="dead", q="value1234")).explain()
    assert "datasets_retry_msg_trgm" in plan and "datasets_retry_rec_trgm" in plan, plan
    assert retry_items(RetryFilters(tab="dead", q="VALUE1234")).count() == 1


def test_tab_counts_are_one_query(posts, django_assert_num_queries):
    with django_assert_num_queries(1):
        counts = retry_tab_counts(RetryFilters(dataset="posts", code="x", q="y"))
    assert counts == {"pending": 0, "scheduled": 0, "dead": 0, "resolved": 0}
