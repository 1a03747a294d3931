"""Log lines, stored in a table partitioned by day (see apps/logs/partitions.py).

The table itself is created by SQL in the migration (Django cannot declare native
partitioning), so ``LogLine`` is unmanaged: the ORM reads it, ingestion writes it with
COPY, retention drops or trims its partitions.
"""

from __future__ import annotations

from django.db import models

from coreadmin.idempotency import BatchRecord

LEVELS = {"debug": 10, "info": 20, "warning": 30, "error": 40, "critical": 50}
LEVEL_NAMES = {number: name for name, number in LEVELS.items()}
# What scrapers and logging libraries also send, mapped to our five levels.
LEVEL_ALIASES = {
    **LEVELS,
    "warn": 30,
    "fatal": 50,
    "exception": 40,
    "notset": 10,
    "trace": 10,
}


class LogLine(models.Model):
    id = models.BigAutoField(primary_key=True)
    ts = models.DateTimeField()
    level = models.SmallIntegerField()
    service = models.CharField(max_length=100)
    logger = models.CharField(max_length=200)
    message = models.TextField()
    thread_id = models.CharField(max_length=100, blank=True, default="")
    context = models.JSONField(default=dict)

    class Meta:
        managed = False
        db_table = "logs_logline"
        ordering = ["-ts", "-id"]

    def __str__(self) -> str:
        return f"{self.ts:%Y-%m-%d %H:%M:%S} {self.level_name} {self.logger}: {self.message[:80]}"

    @property
    def level_name(self) -> str:
        return LEVEL_NAMES.get(self.level, str(self.level))

    @property
    def traceback(self) -> str:
        """The exception text a line carries, from the keys loggers put it under."""
        for key in ("exception", "traceback", "exc_info", "stack"):
            value = self.context.get(key) if isinstance(self.context, dict) else None
            if isinstance(value, str) and value:
                return value
        return ""


class LogStream(models.Model):
    """Each (service, logger) pair seen, so filters can offer them without scanning logs."""

    service = models.CharField(max_length=100)
    logger = models.CharField(max_length=200)
    last_seen_at = models.DateTimeField()

    class Meta:
        ordering = ["service", "logger"]
        constraints = [
            models.UniqueConstraint(fields=["service", "logger"], name="logs_stream_unique")
        ]

    def __str__(self) -> str:
        return f"{self.service}/{self.logger}"


class LogBatch(BatchRecord):
    """A client's ``batch_id`` for log lines and the first response, replayed for repeats;
    pruned after TELEMETRY_BATCH_ID_RETENTION_HOURS."""

    class Meta(BatchRecord.Meta):
        verbose_name_plural = "log batches"
        constraints = [models.UniqueConstraint(fields=["batch_id"], name="logs_batch_id_uniq")]
