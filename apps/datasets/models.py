"""Datasets (definitions), their records, batch ids, and the retry queue.

Records live in one table keyed by (dataset, key): ``key`` is the JSON object of the
dataset's key fields, ``data`` the mapped record. The retry queue is a Postgres table:
a failed record is a row first, so a lost Celery task delays a retry but loses nothing.
"""

from __future__ import annotations

import datetime as dt

from django.contrib.postgres.indexes import GinIndex, OpClass
from django.db import models
from django.db.models.functions import Cast, Upper

from coreadmin.idempotency import BatchRecord


class Dataset(models.Model):
    name = models.SlugField(max_length=100, unique=True)
    key_fields = models.JSONField(default=list, help_text='Stored field names, e.g. ["id"].')
    fields = models.JSONField(
        default=dict,
        help_text='{"id": {"type": "string", "required": true}, '
        '"over18": {"type": "boolean", "source": "over_18"}}',
    )
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Record(models.Model):
    id = models.BigAutoField(primary_key=True)
    # No database FK constraint: it would cost one RI check per inserted row (about a
    # fifth of the upsert's Postgres time). The same integrity comes from one row lock
    # per batch instead: every write holds its dataset FOR KEY SHARE (records_write) and
    # deleting a dataset takes it FOR UPDATE first (dataset_delete), so a dataset cannot
    # go while a batch is being written into it, and a batch never writes into a deleted
    # one. Django still cascades the delete.
    dataset = models.ForeignKey(
        Dataset, on_delete=models.CASCADE, db_index=False, db_constraint=False
    )
    key = models.JSONField()
    data = models.JSONField()
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["dataset", "key"], name="datasets_record_key_uniq")
        ]
        indexes = [models.Index(fields=["dataset", "updated_at"], name="datasets_record_recent")]

    def __str__(self) -> str:
        return f"{self.dataset_id}:{self.key}"


class RecordCount(models.Model):
    """Exact record counts without count(*): each upsert adds one row with the number of
    records it inserted (no contention between concurrent batches); a beat task folds a
    dataset's rows into one. A dataset's count is the sum of its rows."""

    id = models.BigAutoField(primary_key=True)
    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE)
    delta = models.BigIntegerField()

    def __str__(self) -> str:
        return f"{self.dataset_id}: {self.delta:+d}"


class Batch(BatchRecord):
    """A client's ``batch_id`` and the first response, replayed for repeats; pruned after
    DATASETS_BATCH_ID_RETENTION_HOURS."""

    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, db_index=False)

    class Meta(BatchRecord.Meta):
        verbose_name_plural = "batches"
        constraints = [
            models.UniqueConstraint(fields=["dataset", "batch_id"], name="datasets_batch_id_uniq")
        ]


class RetryItem(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", "pending"
        DEAD = "dead", "dead"
        RESOLVED = "resolved", "resolved"

    class Resolution(models.TextChoices):
        WRITTEN = "written", "written"
        DISCARDED = "discarded", "discarded"

    id = models.BigAutoField(primary_key=True)
    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="retry_items")
    record = models.JSONField(help_text="The record as the scraper sent it (or as last edited).")
    original_record = models.JSONField(null=True, blank=True, help_text="Before an edit.")
    code = models.CharField(max_length=32)
    message = models.TextField()
    attempts = models.PositiveIntegerField(default=1)
    max_attempts = models.PositiveIntegerField()
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    resolution = models.CharField(max_length=16, choices=Resolution.choices, blank=True)
    next_attempt_at = models.DateTimeField()
    failed_at = models.DateTimeField(help_text="When the last attempt failed.")
    created_at = models.DateTimeField()
    resolved_at = models.DateTimeField(null=True, blank=True)
    batch_id = models.CharField(max_length=200, blank=True)
    batch_index = models.IntegerField(null=True, blank=True)

    class Meta:
        ordering = ["-failed_at", "-id"]
        indexes = [
            models.Index(fields=["status", "next_attempt_at"], name="datasets_retry_due"),
            models.Index(fields=["dataset", "status"], name="datasets_retry_dataset"),
            models.Index(fields=["code", "status"], name="datasets_retry_code"),
            models.Index(fields=["status", "-failed_at"], name="datasets_retry_failed"),
            # Substring filters (icontains -> UPPER(x) LIKE UPPER('%q%')) use these.
            GinIndex(
                OpClass(Upper("message"), name="gin_trgm_ops"), name="datasets_retry_msg_trgm"
            ),
            GinIndex(
                OpClass(Upper(Cast("record", models.TextField())), name="gin_trgm_ops"),
                name="datasets_retry_rec_trgm",
            ),
        ]

    def __str__(self) -> str:
        return f"retry #{self.pk} {self.code} ({self.status})"

    def is_due(self, now: dt.datetime) -> bool:
        return self.status == self.Status.PENDING and self.next_attempt_at <= now

    @property
    def tab(self) -> str:
        return self.status


class RetryAttempt(models.Model):
    """One attempt at writing a retry item's record, and its error (empty on success)."""

    id = models.BigAutoField(primary_key=True)
    item = models.ForeignKey(RetryItem, on_delete=models.CASCADE, related_name="attempt_log")
    number = models.PositiveIntegerField()
    at = models.DateTimeField()
    ok = models.BooleanField(default=False)
    code = models.CharField(max_length=32, blank=True)
    message = models.TextField(blank=True)
    actor = models.CharField(max_length=150, blank=True, help_text="Operator, or empty.")

    class Meta:
        ordering = ["item", "number"]
        indexes = [models.Index(fields=["item", "number"], name="datasets_attempt_item")]

    def __str__(self) -> str:
        return f"attempt {self.number} of retry #{self.item_id}"
