from __future__ import annotations

import pytest

from apps.accounts.models import AuditEntry
from apps.datasets.models import Record, RetryItem
from apps.datasets.services import batch_submit

pytestmark = pytest.mark.django_db


@pytest.fixture
def queue(clock, posts):
    """Three failures: two validation errors and one missing reference, one made dead."""
    batch_submit(
        dataset=posts,
        records=[
            {"id": "v1", "score": "lots"},
            {"id": "v2", "score": "some", "over_18": "maybe"},
            {"id": "m1", "subreddit": "golang"},
        ],
        batch_id="page-batch",
    )
    RetryItem.objects.filter(batch_index=1).update(status="dead")
    return {i.batch_index: i for i in RetryItem.objects.all()}


def test_the_navigation_has_datasets_and_the_retry_queue(operator_client, queue):
    html = operator_client.get("/").content.decode()
    nav = html.split('<nav class="nav"', 1)[1].split("</nav>", 1)[0]
    assert 'href="/datasets/"' in nav and 'href="/datasets/retries/"' in nav
    assert "Retry queue" in html and "pending" in html  # the overview tile


def test_the_overview_tile_counts_pending_and_dead(operator_client, queue):
    html = operator_client.get("/tiles/retry-queue/").content.decode()
    assert '<div class="big">2 <span class="sub">pending</span>' in html
    assert '>1</span> <span class="sub">dead' in html


def test_tabs_show_counts_and_the_error_and_failed_at_inline(operator_client, queue, clock):
    page = operator_client.get("/datasets/retries/", {"tab": "scheduled"}).content.decode()
    assert 'scheduled<span class="count">2</span>' in page
    assert 'dead<span class="count">1</span>' in page
    assert 'pending<span class="count">0</span>' in page
    assert "score: expected an integer, got &#x27;lots&#x27;" in page
    assert clock.now().strftime("%Y-%m-%d %H:%M:%S") in page
    clock.advance(seconds=3600)
    due = operator_client.get("/datasets/retries/").content.decode()
    assert 'pending<span class="count">2</span>' in due


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"tab": "scheduled", "code": "missing_reference"}, {"m1"}),
        ({"tab": "scheduled", "code": "validation_error"}, {"v1"}),
        ({"tab": "scheduled", "q": "GOLANG"}, {"m1"}),  # substring of the record, any case
        ({"tab": "scheduled", "q": "integer"}, {"v1"}),  # substring of the error
        ({"tab": "dead", "dataset": "posts"}, {"v2"}),
        ({"tab": "dead", "dataset": "subreddits"}, set()),
    ],
)
def test_filters_by_dataset_code_and_substring(operator_client, queue, params, expected):
    response = operator_client.get("/datasets/retries/", params, headers={"HX-Request": "true"})
    html = response.content.decode()
    assert html.lstrip().startswith('<div id="retry-results">')
    shown = {
        ident
        for ident in ("v1", "v2", "m1")
        if f"&quot;{ident}&quot;" in html or f"&#x27;{ident}&#x27;" in html
    }
    assert shown == expected


def test_the_item_page_shows_the_full_record_and_every_attempt(operator_client, queue, clock):
    item = queue[0]
    item.record = {"id": "v1", "score": "lots", "body": "x" * 5000}
    item.save()
    clock.advance(seconds=3600)
    from apps.datasets.services import retries_process_due

    retries_process_due()
    html = operator_client.get(f"/datasets/retries/{item.pk}/").content.decode()
    assert "x" * 5000 in html  # never truncated
    assert html.count("expected an integer") >= 3  # the header and both attempts
    assert "Edit and retry" in html


def test_an_operator_edits_and_retries_and_it_is_written_and_audited(operator_client, queue):
    item = queue[0]
    response = operator_client.post(
        f"/datasets/retries/{item.pk}/retry/", {"record": '{"id": "v1", "score": 7}'}
    )
    assert response.status_code == 302
    item.refresh_from_db()
    assert (item.status, item.original_record) == ("resolved", {"id": "v1", "score": "lots"})
    assert Record.objects.get(key={"id": "v1"}).data == {"id": "v1", "score": 7}
    entry = AuditEntry.objects.get(action="retry.edit_and_retry")
    assert entry.actor == "olivia"


def test_retry_now_from_the_list_returns_the_row(operator_client, queue):
    item = queue[2]
    response = operator_client.post(
        f"/datasets/retries/{item.pk}/retry/", headers={"HX-Request": "true"}
    )
    html = response.content.decode()
    assert html.startswith(f'<tr id="retry-{item.pk}">')
    assert "2/4" in html  # failed again: missing reference, attempt 2 of 4


def test_discard_from_the_list(operator_client, queue):
    item = queue[1]
    response = operator_client.post(
        f"/datasets/retries/{item.pk}/discard/", headers={"HX-Request": "true"}
    )
    assert "discarded" in response.content.decode()
    assert AuditEntry.objects.filter(action="retry.discard").count() == 1


def test_viewers_see_no_actions_and_are_refused_them(viewer_client, queue):
    html = viewer_client.get("/datasets/retries/", {"tab": "scheduled"}).content.decode()
    assert "Retry now" not in html and "Discard all" not in html
    item = queue[0]
    assert viewer_client.post(f"/datasets/retries/{item.pk}/retry/").status_code == 403
    assert viewer_client.post(f"/datasets/retries/{item.pk}/discard/").status_code == 403
    assert viewer_client.get("/datasets/retries/bulk/?action=retry").status_code == 403
    assert viewer_client.post("/datasets/retries/bulk/", {"action": "discard"}).status_code == 403
    assert not AuditEntry.objects.filter(action__startswith="retry.").exists()


def test_actions_need_the_csrf_token(csrf_operator_client, queue):
    item = queue[0]
    assert csrf_operator_client.post(f"/datasets/retries/{item.pk}/discard/").status_code == 403
    item.refresh_from_db()
    assert item.status == "pending"


def test_bulk_discard_of_a_filtered_selection_is_confirmed_first(operator_client, queue):
    confirm = operator_client.get(
        "/datasets/retries/bulk/",
        {"action": "discard", "tab": "scheduled", "code": "validation_error"},
    )
    html = confirm.content.decode()
    assert confirm.status_code == 200
    assert "Discard 1 item?" in html
    assert RetryItem.objects.filter(status="resolved").count() == 0  # nothing yet
    max_id = html.split('name="max_id" value="', 1)[1].split('"', 1)[0]
    done = operator_client.post(
        "/datasets/retries/bulk/",
        {"action": "discard", "tab": "scheduled", "code": "validation_error", "max_id": max_id},
    )
    assert done.status_code == 302
    assert list(
        RetryItem.objects.filter(status="resolved").values_list("batch_index", flat=True)
    ) == [0]
    entry = AuditEntry.objects.get(action="retry.bulk_discard")
    assert entry.details == {"count": 1}
    assert "code=validation_error" in entry.target


def test_bulk_retry_revives_dead_items_for_one_more_attempt(
    operator_client, queue, clock, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        operator_client.post(
            "/datasets/retries/bulk/", {"action": "retry", "tab": "dead", "max_id": "999999"}
        )
    assert len(callbacks) == 1  # the worker task is enqueued after commit
    item = RetryItem.objects.get(batch_index=1)
    assert (item.status, item.next_attempt_at, item.max_attempts) == ("pending", clock.now(), 2)
    from apps.datasets.services import retries_process_due

    assert retries_process_due()["dead"] == 1
    assert AuditEntry.objects.get(action="retry.bulk_retry").details == {"pending": 0, "dead": 1}


def test_bulk_actions_leave_items_that_arrived_after_the_confirmation(
    operator_client, queue, posts
):
    max_id = max(i.pk for i in queue.values())
    batch_submit(dataset=posts, records=[{"id": "late", "score": "x"}], batch_id=None)
    operator_client.post(
        "/datasets/retries/bulk/", {"action": "discard", "tab": "scheduled", "max_id": max_id}
    )
    assert RetryItem.objects.get(record__id="late").status == "pending"


def test_the_dataset_pages_show_counts_recent_records_and_write_rate(operator_client, posts):
    batch_submit(dataset=posts, records=[{"id": f"r{i}"} for i in range(12)], batch_id=None)
    listing = operator_client.get("/datasets/").content.decode()
    assert ">posts</a>" in listing and '<td class="num">12</td>' in listing
    page = operator_client.get("/datasets/posts/").content.decode()
    assert '<div class="big">12</div><div class="muted">stored</div>' in page
    assert (
        "written this minute" in page
        and '<div class="big">12</div><div class="muted">written this' in page
    )
    assert "&quot;id&quot;:&quot;r11&quot;" in page
    assert '<path class="line" d="M' in page
    assert operator_client.get("/datasets/nope/").status_code == 404


def test_pages_query_counts_do_not_grow_with_rows(
    operator_client, posts, django_assert_max_num_queries
):
    def fill(n: int, tag: str) -> None:
        batch_submit(
            dataset=posts,
            records=[{"id": f"{tag}{i}", "score": "x"} for i in range(n)],
            batch_id=None,
        )

    fill(3, "a")
    pages = ["/datasets/", "/datasets/posts/", "/datasets/retries/?tab=scheduled"]
    counts = {}
    for path in pages:
        with django_assert_max_num_queries(20) as captured:
            operator_client.get(path)
        counts[path] = len(captured.captured_queries)
    fill(40, "b")
    for path in pages:
        with django_assert_max_num_queries(counts[path]):
            operator_client.get(path)
    item = RetryItem.objects.first()
    with django_assert_max_num_queries(12):
        operator_client.get(f"/datasets/retries/{item.pk}/")


def test_an_edit_that_is_not_json_is_refused_with_a_message(operator_client, queue):
    item = queue[0]
    response = operator_client.post(
        f"/datasets/retries/{item.pk}/retry/", {"record": "{not json"}, follow=True
    )
    assert "not valid JSON" in response.content.decode()
    item.refresh_from_db()
    assert (item.attempts, item.original_record) == (1, None)


def test_live_mode_makes_the_results_poll_themselves(operator_client, queue):
    quiet = operator_client.get("/datasets/retries/", {"tab": "dead"}).content.decode()
    assert 'hx-trigger="every 5s"' not in quiet
    live = operator_client.get("/datasets/retries/", {"tab": "dead", "live": "1"}).content.decode()
    assert 'hx-trigger="every 5s"' in live
    assert "?tab=dead&live=1&page=1" in live
