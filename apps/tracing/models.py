"""Spans and their per-stage sketches.

``Span`` rows live in ``tracing_span``, a table partitioned by day on ``started_at``
(created by migration 0001, partitions made by services.span_partitions_ensure and
dropped whole by retention). Django does not manage that table.

``StageMinute`` / ``StageHour`` hold one mergeable sketch (see sketch.py) per service,
stage and minute or hour; the stages API and pages merge those, never raw rows.
"""

from __future__ import annotations

from django.db import models

from coreadmin.idempotency import BatchRecord


class Span(models.Model):
    pk = models.CompositePrimaryKey("id", "started_at")
    id = models.BigIntegerField()
    started_at = models.DateTimeField()
    thread_id = models.CharField(max_length=200)
    stage = models.CharField(max_length=200)
    name = models.CharField(max_length=200)
    parent_stage = models.CharField(max_length=200)
    service = models.CharField(max_length=100)
    duration_ms = models.FloatField()
    status = models.CharField(max_length=10)

    class Meta:
        managed = False
        db_table = "tracing_span"

    def __str__(self) -> str:
        return f"{self.thread_id} {self.stage}"


class StageSketch(models.Model):
    service = models.CharField(max_length=100)
    stage = models.CharField(max_length=200)
    parent_stage = models.CharField(max_length=200, default="")
    bucket = models.DateTimeField()
    count = models.BigIntegerField(default=0)
    error_count = models.BigIntegerField(default=0)
    zero_count = models.BigIntegerField(default=0)
    sum_ms = models.FloatField(default=0.0)
    min_ms = models.FloatField(default=float("inf"))
    max_ms = models.FloatField(default=0.0)
    bin_offset = models.IntegerField(default=0)
    bins = models.BinaryField(default=b"")

    class Meta:
        abstract = True

    def __str__(self) -> str:
        return f"{self.service} {self.stage} @ {self.bucket:%Y-%m-%d %H:%M}"


class StageMinute(StageSketch):
    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["bucket", "service", "stage"], name="tracing_stageminute_key"
            )
        ]


class StageHour(StageSketch):
    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["bucket", "service", "stage"], name="tracing_stagehour_key"
            )
        ]


class SpanBatch(BatchRecord):
    """A client's ``batch_id`` for spans and the first response, replayed for repeats;
    pruned after TELEMETRY_BATCH_ID_RETENTION_HOURS."""

    class Meta(BatchRecord.Meta):
        verbose_name_plural = "span batches"
        constraints = [models.UniqueConstraint(fields=["batch_id"], name="tracing_batch_id_uniq")]
