"""The retry queue: a Postgres table worked by Celery.

Workers claim due items in bulk with ``SELECT ... FOR UPDATE SKIP LOCKED`` and write
them in the same transaction that records the outcome, so two workers never process
one item, and a worker killed mid-retry holds nothing when its transaction dies: the
items are still pending and due, and the next worker takes them.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import defaultdict
from typing import Any

from django.conf import settings
from django.db import DatabaseError, OperationalError, connection, transaction
from django.db.models import F, QuerySet

from apps.accounts.services import audit_record
from apps.datasets.errors import RetryNotAllowed
from apps.datasets.metrics import RETRY_ATTEMPTS
from apps.datasets.models import Dataset, RetryAttempt, RetryItem
from apps.datasets.services.writes import (
    Failure,
    infrastructure_failure,
    records_write,
    retry_backoff_seconds,
)
from coreadmin.clock import clock
from coreadmin.errors import NotFound

Status = RetryItem.Status
logger = logging.getLogger("coreadmin.datasets")


def _write_group(dataset: Dataset, group: list[RetryItem], now: dt.datetime) -> dict[int, Failure]:
    """{index: failure} for one dataset's items. An unexpected error (a bug, not the
    database going away) fails this group's attempt instead of the whole pass, so one
    poisonous record cannot stall the queue."""
    try:
        with transaction.atomic():
            outcome = records_write(dataset=dataset, records=[i.record for i in group], now=now)
    except DatabaseError as exc:
        if infrastructure_failure(exc):
            raise
        message = f"{type(exc).__name__}: {exc}"
        return {i: Failure(i, "write_error", message) for i in range(len(group))}
    except Exception as exc:
        logger.exception("retry attempt failed unexpectedly", extra={"dataset": dataset.name})
        message = f"{type(exc).__name__}: {exc}"
        return {i: Failure(i, "write_error", message) for i in range(len(group))}
    return {f.index: f for f in outcome.failures}


def _attempt(items: list[RetryItem], now: dt.datetime, *, actor: str = "") -> dict[str, int]:
    """Writes the items' records (grouped by dataset) and records the outcome of this
    attempt on each item. Runs inside the transaction that locked the items."""
    counts = {"resolved": 0, "failed": 0, "dead": 0}
    groups: dict[int, list[RetryItem]] = defaultdict(list)
    for item in items:
        groups[item.dataset_id].append(item)
    datasets = Dataset.objects.in_bulk(list(groups))
    attempts: list[RetryAttempt] = []
    for dataset_id in sorted(groups):  # one order everywhere, so workers cannot deadlock
        group = groups[dataset_id]
        failed = _write_group(datasets[dataset_id], group, now)
        for index, item in enumerate(group):
            item.attempts += 1
            failure = failed.get(index)
            if failure is None:
                item.status = Status.RESOLVED
                item.resolution = RetryItem.Resolution.WRITTEN
                item.resolved_at = now
                counts["resolved"] += 1
                attempts.append(
                    RetryAttempt(item=item, number=item.attempts, at=now, ok=True, actor=actor)
                )
                continue
            item.code, item.message, item.failed_at = failure.code, failure.message, now
            counts["failed"] += 1
            if item.status == Status.DEAD or item.attempts >= item.max_attempts:
                item.status = Status.DEAD
                counts["dead"] += 1
            else:
                delay = retry_backoff_seconds(item.attempts)
                item.next_attempt_at = now + dt.timedelta(seconds=delay)
            attempts.append(
                RetryAttempt(
                    item=item,
                    number=item.attempts,
                    at=now,
                    code=failure.code,
                    message=failure.message,
                    actor=actor,
                )
            )
    RetryItem.objects.bulk_update(
        items,
        [
            "attempts",
            "status",
            "resolution",
            "resolved_at",
            "code",
            "message",
            "failed_at",
            "next_attempt_at",
            "record",
            "original_record",
        ],
    )
    RetryAttempt.objects.bulk_create(attempts)
    return counts


def retries_process_due(*, limit: int | None = None) -> dict[str, int]:
    """One worker pass: claims up to ``limit`` due items (skipping those other workers
    hold), attempts them, records the outcome; all in one transaction."""
    limit = limit or settings.DATASETS_RETRY_CLAIM_BATCH
    now = clock.now()
    with transaction.atomic():
        items = list(
            RetryItem.objects.select_for_update(skip_locked=True)
            .filter(status=Status.PENDING, next_attempt_at__lte=now)
            .order_by("next_attempt_at", "id")[:limit]
        )
        counts = _attempt(items, now) if items else {"resolved": 0, "failed": 0, "dead": 0}
    for outcome, n in counts.items():
        if n:
            RETRY_ATTEMPTS.labels(outcome).inc(n)
    return {"claimed": len(items), **counts}


def _lock(item_id: int) -> RetryItem:
    try:
        return RetryItem.objects.select_for_update(nowait=True).get(pk=item_id)
    except RetryItem.DoesNotExist as exc:
        raise NotFound(f"No retry item {item_id}.") from exc
    except OperationalError as exc:
        raise RetryNotAllowed(
            "A worker is retrying this item right now; look again in a moment."
        ) from exc


def retry_now(*, item_id: int, actor: str, record: Any = None) -> RetryItem:
    """An operator's retry (optionally of an edited record), now, in this request.
    A pending item that fails again keeps its schedule; a dead one stays dead."""
    now = clock.now()
    with transaction.atomic():
        item = _lock(item_id)
        if item.status == Status.RESOLVED:
            raise RetryNotAllowed(f"Retry item {item_id} is already resolved ({item.resolution}).")
        edited = record is not None and record != item.record
        if edited:
            if item.original_record is None:
                item.original_record = item.record
            item.record = record
        _attempt([item], now, actor=actor)
        audit_record(
            actor=actor,
            action="retry.edit_and_retry" if edited else "retry.retry",
            target=f"retry #{item.pk} ({item.dataset.name})",
            details={"status": item.status, "code": item.code if item.status != "resolved" else ""},
        )
    return item


def retry_discard(*, item_id: int, actor: str) -> RetryItem:
    now = clock.now()
    with transaction.atomic():
        item = _lock(item_id)
        if item.status != Status.RESOLVED:
            item.status = Status.RESOLVED
            item.resolution = RetryItem.Resolution.DISCARDED
            item.resolved_at = now
            item.save(update_fields=["status", "resolution", "resolved_at"])
            audit_record(
                actor=actor,
                action="retry.discard",
                target=f"retry #{item.pk} ({item.dataset.name})",
                details={"code": item.code, "record": item.record},
            )
    return item


def retries_bulk_retry(*, items: QuerySet[RetryItem], actor: str, description: str) -> int:
    """Makes every unresolved item of the selection due now. Dead items get one more
    automatic attempt; workers do the writing (the task is enqueued after commit)."""
    from apps.datasets.tasks import retry_due

    now = clock.now()
    selection = items.exclude(status=Status.RESOLVED)
    with transaction.atomic():
        pending = selection.filter(status=Status.PENDING).update(next_attempt_at=now)
        dead = selection.filter(status=Status.DEAD).update(
            status=Status.PENDING, next_attempt_at=now, max_attempts=F("attempts") + 1
        )
        audit_record(
            actor=actor,
            action="retry.bulk_retry",
            target=description,
            details={"pending": pending, "dead": dead},
        )
        transaction.on_commit(retry_due.delay)
    return pending + dead


def retries_bulk_discard(*, items: QuerySet[RetryItem], actor: str, description: str) -> int:
    now = clock.now()
    with transaction.atomic():
        count = items.exclude(status=Status.RESOLVED).update(
            status=Status.RESOLVED, resolution=RetryItem.Resolution.DISCARDED, resolved_at=now
        )
        audit_record(
            actor=actor, action="retry.bulk_discard", target=description, details={"count": count}
        )
    return count


def retries_prune_resolved(*, limit: int = 10_000) -> int:
    """Deletes up to ``limit`` items resolved more than DATASETS_RESOLVED_RETENTION_DAYS
    ago, with their attempts (two statements; no rows loaded into Python)."""
    cutoff = clock.now() - dt.timedelta(days=settings.DATASETS_RESOLVED_RETENTION_DAYS)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            "SELECT id FROM datasets_retryitem WHERE status = 'resolved' AND resolved_at < %s "
            "ORDER BY id LIMIT %s FOR UPDATE SKIP LOCKED",
            [cutoff, limit],
        )
        ids = [row[0] for row in cursor.fetchall()]
        if not ids:
            return 0
        cursor.execute("DELETE FROM datasets_retryattempt WHERE item_id = ANY(%s)", [ids])
        cursor.execute("DELETE FROM datasets_retryitem WHERE id = ANY(%s)", [ids])
    return len(ids)
