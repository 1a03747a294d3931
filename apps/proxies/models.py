"""The proxy pool: proxies (password encrypted at rest), per-target bans, leases, health
checks, and each service's pool policy. Hot leasing state lives in Redis (apps/proxies/
pool.py); these rows are the system of record it is rebuilt from."""

from __future__ import annotations

import datetime as dt
import urllib.parse

from django.db import models
from django.views.decorators.debug import sensitive_variables

from coreadmin import crypto


class Proxy(models.Model):
    class Scheme(models.TextChoices):
        HTTP = "http", "http"
        HTTPS = "https", "https"
        SOCKS5 = "socks5", "socks5"

    class Status(models.TextChoices):
        ACTIVE = "active", "active"
        FROZEN = "frozen", "frozen"
        QUARANTINED = "quarantined", "quarantined"

    scheme = models.CharField(max_length=8, choices=Scheme.choices, default=Scheme.HTTP)
    host = models.CharField(max_length=255)
    port = models.PositiveIntegerField()
    username = models.CharField(max_length=255, blank=True)
    # Fernet token under settings.ENCRYPTION_KEYS; never rendered anywhere.
    password_encrypted = models.TextField(blank=True, editable=False)
    service = models.CharField(max_length=100, db_index=True)
    country = models.CharField(max_length=2, blank=True)
    tags = models.JSONField(default=list, blank=True)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.ACTIVE)
    health_score = models.FloatField(default=1.0, help_text="0..1, moved by outcomes and checks.")
    success_rate = models.FloatField(default=1.0, help_text="Moving average of successes.")
    latency_ms = models.FloatField(null=True, blank=True, help_text="Moving average.")
    consecutive_failures = models.PositiveIntegerField(default=0)
    quarantine_attempts = models.PositiveIntegerField(default=0)
    next_check_at = models.DateTimeField(null=True, blank=True)
    last_checked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name_plural = "proxies"
        ordering = ["service", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["service", "scheme", "host", "port", "username"], name="proxy_unique_url"
            )
        ]
        indexes = [models.Index(fields=["service", "status"])]

    def __str__(self) -> str:
        return f"{self.display_url} [{self.service}]"

    def set_password(self, plaintext: str) -> None:
        self.password_encrypted = crypto.encrypt(plaintext) if plaintext else ""

    def password(self) -> str:
        return crypto.decrypt(self.password_encrypted) if self.password_encrypted else ""

    @property
    def has_password(self) -> bool:
        return bool(self.password_encrypted)

    @property
    def display_url(self) -> str:
        """The URL without its password: safe for pages, logs and lists."""
        user = f"{urllib.parse.quote(self.username, safe='')}@" if self.username else ""
        return f"{self.scheme}://{user}{self.host}:{self.port}"

    @sensitive_variables()
    def url_with_password(self) -> str:
        """Only for a lease response to the key that leased."""
        return build_url(self.scheme, self.host, self.port, self.username, self.password())

    def is_available_for(self, target: str, now: dt.datetime) -> bool:
        """Leasable for ``target`` now (by the rows; leasing itself asks Redis)."""
        if self.status != self.Status.ACTIVE:
            return False
        return all(ban.target != target or ban.banned_until <= now for ban in self.bans.all())


@sensitive_variables()
def build_url(scheme: str, host: str, port: int, username: str, password: str) -> str:
    auth = ""
    if username:
        auth = urllib.parse.quote(username, safe="")
        if password:
            auth += ":" + urllib.parse.quote(password, safe="")
        auth += "@"
    return f"{scheme}://{auth}{host}:{port}"


class ProxyBan(models.Model):
    """A proxy banned by one target. The cooldown doubles with each repeated ban (capped)
    and the count starts again after a quiet period (PROXY_BAN_RESET_SECONDS)."""

    proxy = models.ForeignKey(Proxy, on_delete=models.CASCADE, related_name="bans")
    target = models.CharField(max_length=255)
    count = models.PositiveIntegerField(default=1)
    banned_at = models.DateTimeField()
    banned_until = models.DateTimeField(db_index=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["proxy", "target"], name="proxyban_unique_target")
        ]

    def __str__(self) -> str:
        return f"proxy {self.proxy_id} banned by {self.target} until {self.banned_until}"


class Lease(models.Model):
    class Outcome(models.TextChoices):
        SUCCESS = "success", "success"
        FAILURE = "failure", "failure"
        TIMEOUT = "timeout", "timeout"
        BANNED = "banned", "banned"

    id = models.CharField(primary_key=True, max_length=32)
    api_key = models.ForeignKey("accounts.ApiKey", on_delete=models.CASCADE)
    proxy = models.ForeignKey(Proxy, on_delete=models.CASCADE, related_name="leases")
    service = models.CharField(max_length=100)
    target = models.CharField(max_length=255)
    session = models.CharField(max_length=255, blank=True)
    leased_at = models.DateTimeField(db_index=True)
    expires_at = models.DateTimeField()
    outcome = models.CharField(max_length=8, choices=Outcome.choices, blank=True)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    latency_ms = models.FloatField(null=True, blank=True)
    reported_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["proxy", "-leased_at"])]

    def __str__(self) -> str:
        return f"lease {self.id} of proxy {self.proxy_id}"


class HealthCheck(models.Model):
    proxy = models.ForeignKey(Proxy, on_delete=models.CASCADE, related_name="checks")
    at = models.DateTimeField()
    ok = models.BooleanField()
    latency_ms = models.FloatField(null=True, blank=True)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    error = models.CharField(max_length=255, blank=True)

    class Meta:
        indexes = [models.Index(fields=["proxy", "-at"]), models.Index(fields=["at"])]

    def __str__(self) -> str:
        return f"check of proxy {self.proxy_id} at {self.at}: {'ok' if self.ok else self.error}"


class PoolPolicy(models.Model):
    """Per-service leasing policy; a service without a row uses the settings' defaults."""

    class Strategy(models.TextChoices):
        ROUND_ROBIN = "round_robin", "round robin"
        LEAST_RECENTLY_USED = "lru", "least recently used"
        WEIGHTED = "weighted", "weighted by health score"

    service = models.CharField(max_length=100, unique=True)
    strategy = models.CharField(
        max_length=12, choices=Strategy.choices, default=Strategy.ROUND_ROBIN
    )
    max_leases_per_proxy = models.PositiveIntegerField(
        default=0, help_text="Concurrent leases a proxy may have; 0 means no cap."
    )
    lease_seconds = models.PositiveIntegerField(default=0, help_text="0: PROXY_LEASE_SECONDS.")
    min_usable_fraction = models.FloatField(
        null=True, blank=True, help_text="Below this usable share, leases say slow down."
    )

    class Meta:
        verbose_name_plural = "pool policies"

    def __str__(self) -> str:
        return f"{self.service}: {self.strategy}"
