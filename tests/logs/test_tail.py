"""The live tail is exact under concurrent ingestion: a transaction that took lower ids
but commits later is still shown, once."""

from __future__ import annotations

import datetime as dt

import psycopg
import pytest
from django.db import connection

from apps.logs.partitions import partitions_ensure
from apps.logs.selectors import LogFilter, log_lines_since, tail_cursor, valid_tail_cursor

pytestmark = pytest.mark.django_db(transaction=True)

DAY = dt.date(2026, 9, 21)
INSERT = (
    "INSERT INTO logs_logline (ts, level, service, logger, message, thread_id, context) "
    "VALUES ('2026-09-21T14:00:00Z', 20, 'reddit', 'scraper', %s, '', '{}') RETURNING id"
)


def own_connection() -> psycopg.Connection:
    params = connection.get_connection_params()
    params.pop("cursor_factory", None)
    params.pop("context", None)
    return psycopg.connect(**params)


def messages(page) -> list[str]:
    return [line.message for line in page.lines]


def test_a_transaction_committing_after_a_later_one_is_not_skipped_nor_shown_twice(
    truncate_logs,
):
    partitions_ensure([DAY])
    everything = LogFilter()
    cursor = tail_cursor()
    with own_connection() as slow, own_connection() as fast:
        slow_id = slow.execute(INSERT, ["slow"]).fetchone()[0]  # lower id, not committed
        fast_id = fast.execute(INSERT, ["fast"]).fetchone()[0]
        fast.commit()
        assert slow_id < fast_id
        first = log_lines_since(everything, cursor=cursor)
        assert messages(first) == ["fast"]
        # The id-based tail would now ask for id > fast_id and never see "slow".
        slow.commit()
    second = log_lines_since(everything, cursor=first.cursor)
    assert messages(second) == ["slow"]
    assert log_lines_since(everything, cursor=second.cursor).lines == []
    # Nothing is lost by a poll that found nothing: the old cursor still covers it.
    with own_connection() as late:
        late.execute(INSERT, ["late"])
    assert messages(log_lines_since(everything, cursor=second.cursor)) == ["late"]


def test_more_new_lines_than_the_limit_are_flagged_and_filters_apply(truncate_logs):
    partitions_ensure([DAY])
    cursor = tail_cursor()
    with own_connection() as conn:
        for i in range(5):
            conn.execute(INSERT, [f"line {i}"])
    page = log_lines_since(LogFilter(), cursor=cursor, limit=3)
    assert messages(page) == ["line 4", "line 3", "line 2"] and page.more
    assert log_lines_since(LogFilter(service="hn"), cursor=cursor).lines == []


def test_only_snapshot_text_is_a_cursor():
    assert valid_tail_cursor("1020:1024:1021,1023") and valid_tail_cursor("5:5:")
    assert not valid_tail_cursor("5") and not valid_tail_cursor("1:2:x")


def test_the_api_hands_out_a_cursor_and_tails_with_it(scraper_api, clock, truncate_logs):
    from tests.logs.conftest import record

    first = scraper_api.get("/api/v1/logs").json()
    assert first["items"] == [] and valid_tail_cursor(first["cursor"])
    assert scraper_api.post("/api/v1/logs", {"records": [record(message="new")]}).status_code == 202
    tail = scraper_api.get("/api/v1/logs", cursor=first["cursor"]).json()
    assert [i["message"] for i in tail["items"]] == ["new"] and tail["more"] is False
    assert scraper_api.get("/api/v1/logs", cursor=tail["cursor"]).json()["items"] == []
    bad = scraper_api.get("/api/v1/logs", cursor="1;drop")
    assert (
        bad.status_code == 422 and bad.json()["error"]["details"]["fields"][0]["path"] == "cursor"
    )
