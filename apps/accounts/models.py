from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.db import models


class ApiKey(models.Model):
    class Scope(models.TextChoices):
        SCRAPER = "scraper", "scraper"
        ADMIN = "admin", "admin"

    name = models.CharField(max_length=100)
    # The 8 characters after "cak_": public, indexed, used to find the row.
    prefix = models.CharField(max_length=8, unique=True)
    # SHA-256 of the whole key. The secret part is 40 random base62 characters
    # (~238 bits), so a fast hash is enough; a slow KDF would only cost latency.
    key_hash = models.CharField(max_length=64)
    scope = models.CharField(max_length=16, choices=Scope.choices, default=Scope.SCRAPER)
    service = models.CharField(
        max_length=100, blank=True, help_text="If set, the key may act only for this service."
    )
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "API key"
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} (cak_{self.prefix}_…)"

    def is_expired(self, now: dt.datetime) -> bool:
        return self.expires_at is not None and self.expires_at <= now

    @property
    def is_admin(self) -> bool:
        return self.scope == self.Scope.ADMIN


class AuditEntry(models.Model):
    """One operator action (freeze a proxy, force a circuit, retry a dead record...)."""

    at = models.DateTimeField(db_index=True)
    actor = models.CharField(max_length=150, help_text="Username or API key name.")
    action = models.CharField(max_length=100)
    target = models.CharField(max_length=255)
    details = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-at", "-id"]
        verbose_name_plural = "audit entries"

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M:%S} {self.actor} {self.action} {self.target}"
