from __future__ import annotations

import datetime as dt

from django.contrib.postgres.fields import ArrayField
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

LOG_LEVELS = ["debug", "info", "warning", "error", "critical"]


class ServiceConfiguration(models.Model):
    """What every scraper instance of one service runs with; returned with each heartbeat.

    A service without a row runs with the FLEET_DEFAULT_* settings (see docs/fleet.md).
    """

    class Level(models.TextChoices):
        DEBUG = "debug", "debug"
        INFO = "info", "info"
        WARNING = "warning", "warning"
        ERROR = "error", "error"
        CRITICAL = "critical", "critical"

    service = models.CharField(max_length=100, unique=True)
    batch_size = models.PositiveIntegerField(
        validators=[MinValueValidator(1), MaxValueValidator(100_000)],
        help_text="Records per batch write the scraper sends.",
    )
    rate_limit_policies = ArrayField(
        models.CharField(max_length=200),
        default=list,
        blank=True,
        help_text="Names of rate-limit policies (keys) the scraper acquires from; comma-separated.",
    )
    max_workers = models.PositiveIntegerField(
        validators=[MinValueValidator(1), MaxValueValidator(1024)],
        help_text="Concurrent workers per scraper instance.",
    )
    retry_attempts = models.PositiveIntegerField(
        validators=[MaxValueValidator(100)], help_text="Client-side retries per request."
    )
    span_sample_rate = models.FloatField(
        validators=[MinValueValidator(0.0), MaxValueValidator(1.0)],
        help_text="Share of execution threads whose spans the scraper sends (0 to 1).",
    )
    min_log_level = models.CharField(
        max_length=10,
        choices=Level.choices,
        help_text="Log lines below this level are accepted and dropped (and counted).",
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["service"]
        verbose_name = "service configuration"

    def __str__(self) -> str:
        return self.service


class ScraperInstance(models.Model):
    """The latest heartbeat of one scraper process (one row per service and instance)."""

    service = models.CharField(max_length=100)
    instance = models.CharField(max_length=200)
    version = models.CharField(max_length=64, blank=True)
    memory_mb = models.FloatField(null=True, blank=True)
    extra = models.JSONField(default=dict, blank=True)
    first_seen_at = models.DateTimeField()
    last_seen_at = models.DateTimeField(db_index=True)
    heartbeats = models.PositiveBigIntegerField(default=1)

    class Meta:
        ordering = ["-last_seen_at", "id"]
        constraints = [
            models.UniqueConstraint(fields=["service", "instance"], name="fleet_instance_unique")
        ]
        indexes = [models.Index(fields=["service", "-last_seen_at"], name="fleet_service_seen")]

    def __str__(self) -> str:
        return f"{self.service}/{self.instance}"

    def is_live(self, now: dt.datetime, stale_after_s: float) -> bool:
        return (now - self.last_seen_at).total_seconds() <= stale_after_s
