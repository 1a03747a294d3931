from __future__ import annotations

import random

import pytest

from apps.accounts.models import AuditEntry
from apps.datasets.models import Record, RetryAttempt, RetryItem
from apps.datasets.services import (
    batch_submit,
    retries_process_due,
    retry_backoff_seconds,
)
from apps.datasets.tasks import retry_due

from .conftest import reconcile

pytestmark = pytest.mark.django_db


def test_a_missing_parent_is_queued_and_the_retry_succeeds_once_the_parent_exists(
    clock, posts, subreddits
):
    body = batch_submit(dataset=posts, records=[{"id": "p1", "subreddit": "rust"}], batch_id=None)
    assert body["failures"][0]["code"] == "missing_reference"
    item = RetryItem.objects.get()
    assert item.status == "pending"
    assert item.next_attempt_at > clock.now()

    clock.advance(seconds=3600)
    assert retries_process_due() == {"claimed": 1, "resolved": 0, "failed": 1, "dead": 0}
    item.refresh_from_db()
    assert (item.status, item.attempts) == ("pending", 2)

    batch_submit(dataset=subreddits, records=[{"name": "rust"}], batch_id=None)
    clock.advance(seconds=3600)
    assert retries_process_due()["resolved"] == 1
    item.refresh_from_db()
    assert (item.status, item.resolution, item.attempts) == ("resolved", "written", 3)
    assert Record.objects.get(dataset=posts).data == {"id": "p1", "subreddit": "rust"}
    assert [a.ok for a in item.attempt_log.all()] == [False, False, True]
    reconcile(posts, 1)


def test_nothing_is_retried_before_it_is_due(clock, posts):
    batch_submit(dataset=posts, records=[{"id": "x", "score": "no"}], batch_id=None)
    assert retries_process_due()["claimed"] == 0
    item = RetryItem.objects.get()
    clock.advance(seconds=(item.next_attempt_at - clock.now()).total_seconds())
    assert retries_process_due()["claimed"] == 1


def test_backoff_grows_exponentially_with_jitter_and_is_capped(fast_retries):
    rng = random.Random(7)
    for attempts, full in [(1, 10), (2, 20), (3, 40), (4, 80), (20, 3600)]:
        delays = [retry_backoff_seconds(attempts, rng) for _ in range(200)]
        assert min(delays) >= full / 2 and max(delays) <= full
        assert max(delays) - min(delays) > full / 4  # jittered, not constant


def test_an_item_is_dead_after_max_attempts_and_every_error_is_kept(clock, posts):
    batch_submit(dataset=posts, records=[{"id": "x", "score": "no"}], batch_id=None)
    for _ in range(10):
        clock.advance(seconds=3600)
        retries_process_due()
    item = RetryItem.objects.get()
    assert (item.status, item.attempts, item.max_attempts) == ("dead", 4, 4)
    attempts = list(item.attempt_log.all())
    assert [a.number for a in attempts] == [1, 2, 3, 4]
    assert all("expected an integer" in a.message for a in attempts)
    assert reconcile(posts, 1) == {"stored": 0, "pending": 0, "dead": 1}


def test_schedule_uses_the_injected_clock(clock, posts):
    batch_submit(dataset=posts, records=[{"id": "x", "subreddit": "nope"}], batch_id=None)
    item = RetryItem.objects.get()
    delay = (item.next_attempt_at - clock.now()).total_seconds()
    assert 5 <= delay <= 10
    assert item.failed_at == clock.now()


def test_the_celery_task_drains_everything_due(clock, posts):
    batch_submit(
        dataset=posts,
        records=[{"id": f"x{i}", "subreddit": "later"} for i in range(7)],
        batch_id=None,
    )
    clock.advance(seconds=60)
    totals = retry_due.apply(kwargs={}).get()
    assert totals["claimed"] == 7 and totals["failed"] == 7


def test_an_admin_retries_an_edited_record_through_the_api(admin_api, posts):
    batch_submit(dataset=posts, records=[{"id": "e", "score": "ten"}], batch_id=None)
    item = RetryItem.objects.get()
    response = admin_api.post(
        f"/api/v1/retries/{item.pk}/retry", {"record": {"id": "e", "score": 10}}
    )
    assert response.status_code == 200, response.json()
    assert response.json()["status"] == "resolved"
    item.refresh_from_db()
    assert item.original_record == {"id": "e", "score": "ten"}
    assert Record.objects.get(dataset=posts).data["score"] == 10
    assert AuditEntry.objects.filter(action="retry.edit_and_retry").count() == 1


def test_a_retry_that_fails_again_reports_the_new_error(admin_api, posts):
    batch_submit(dataset=posts, records=[{"id": "e", "subreddit": "nope"}], batch_id=None)
    item = RetryItem.objects.get()
    body = admin_api.post(f"/api/v1/retries/{item.pk}/retry").json()
    assert (body["status"], body["attempts"], body["code"]) == ("pending", 2, "missing_reference")


def test_retries_are_listed_and_filtered(scraper_api, posts):
    batch_submit(dataset=posts, records=[{"id": "a", "score": "x"}, {"id": "b"}], batch_id="q")
    listed = scraper_api.get("/api/v1/retries", dataset="posts", status="pending").json()
    assert listed["count"] == 1
    item = listed["items"][0]
    assert item["record"] == {"id": "a", "score": "x"}
    assert (item["dataset"], item["code"], item["attempts"]) == ("posts", "validation_error", 1)
    assert scraper_api.get("/api/v1/retries", status="dead").json()["count"] == 0
    assert scraper_api.get("/api/v1/retries", status="bogus").status_code == 422


def test_discard_resolves_an_item_and_retrying_it_then_is_refused(admin_api, scraper_api, posts):
    batch_submit(dataset=posts, records=[{"id": "a", "score": "x"}], batch_id=None)
    item = RetryItem.objects.get()
    assert scraper_api.post(f"/api/v1/retries/{item.pk}/discard").status_code == 403
    body = admin_api.post(f"/api/v1/retries/{item.pk}/discard").json()
    assert (body["status"], body["resolution"]) == ("resolved", "discarded")
    again = admin_api.post(f"/api/v1/retries/{item.pk}/retry")
    assert again.status_code == 409
    assert admin_api.post("/api/v1/retries/999999/retry").status_code == 404
    assert AuditEntry.objects.filter(action="retry.discard").count() == 1


def test_a_manual_retry_of_a_dead_item_that_fails_leaves_it_dead(admin_api, clock, posts):
    batch_submit(dataset=posts, records=[{"id": "x", "score": "no"}], batch_id=None)
    RetryItem.objects.update(status="dead")
    body = admin_api.post(f"/api/v1/retries/{RetryItem.objects.get().pk}/retry").json()
    assert (body["status"], body["attempts"]) == ("dead", 2)
    assert RetryAttempt.objects.count() == 2


def test_batch_ids_are_pruned_after_the_retention_period(clock, posts, settings):
    from apps.datasets.models import Batch
    from apps.datasets.tasks import prune_batches

    settings.DATASETS_BATCH_ID_RETENTION_HOURS = 24
    batch_submit(dataset=posts, records=[{"id": "a"}], batch_id="old")
    clock.advance(seconds=23 * 3600)
    batch_submit(dataset=posts, records=[{"id": "b"}], batch_id="new")
    clock.advance(seconds=2 * 3600)
    assert prune_batches.apply().get() == 1
    assert list(Batch.objects.values_list("batch_id", flat=True)) == ["new"]


def test_one_poisonous_dataset_does_not_stall_the_queue(clock, posts, subreddits):
    batch_submit(dataset=posts, records=[{"id": "a", "subreddit": "x"}], batch_id=None)
    batch_submit(dataset=subreddits, records=[{"name": None}], batch_id=None)
    batch_submit(dataset=subreddits, records=[{"name": "x"}], batch_id=None)
    # Corrupt a definition behind the service's back: mapping it now raises.
    subreddits.fields = {"name": {"required": True}}
    subreddits.save()
    clock.advance(seconds=3600)
    counts = retries_process_due()
    assert counts == {"claimed": 2, "resolved": 1, "failed": 1, "dead": 0}
    broken = RetryItem.objects.get(dataset=subreddits)
    assert (broken.code, broken.attempts) == ("write_error", 2)
    assert "KeyError" in broken.message


def test_resolved_items_are_pruned_after_their_retention_with_their_attempts(
    clock, posts, settings
):
    from apps.datasets.tasks import prune_resolved

    settings.DATASETS_RESOLVED_RETENTION_DAYS = 7
    batch_submit(
        dataset=posts,
        records=[{"id": "a", "score": "x"}, {"id": "b", "score": "y"}],
        batch_id=None,
    )
    first, second = RetryItem.objects.order_by("id")
    from apps.datasets.services import retry_discard

    retry_discard(item_id=first.pk, actor="olivia")
    clock.advance(seconds=6 * 86400)
    assert prune_resolved.apply().get() == 0
    clock.advance(seconds=2 * 86400)
    assert prune_resolved.apply().get() == 1
    assert list(RetryItem.objects.values_list("id", flat=True)) == [second.pk]  # pending stays
    assert RetryAttempt.objects.filter(item_id=first.pk).count() == 0


def test_beat_schedules_the_retry_and_pruning_tasks(settings):
    schedule = settings.CELERY_BEAT_SCHEDULE
    assert schedule["datasets-retry-due"]["task"] == "apps.datasets.tasks.retry_due"
    assert schedule["datasets-prune-batches"]["task"] == "apps.datasets.tasks.prune_batches"
    assert schedule["datasets-prune-resolved"]["task"] == "apps.datasets.tasks.prune_resolved"


def test_the_retry_due_command_runs_a_pass(clock, posts, subreddits):
    from io import StringIO

    from django.core.management import call_command

    batch_submit(dataset=posts, records=[{"id": "c", "subreddit": "later"}], batch_id=None)
    batch_submit(dataset=subreddits, records=[{"name": "later"}], batch_id=None)
    clock.advance(seconds=3600)
    out = StringIO()
    call_command("retry_due", stdout=out)
    assert out.getvalue().strip() == "claimed 1, resolved 1, failed again 0, dead 0"
