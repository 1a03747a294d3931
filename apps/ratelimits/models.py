"""Rate-limit policies (GCRA) and their per-API-key tiers.

The buckets live in Redis (apps/ratelimits/lua.py); Postgres holds what each limit is.
"""

from __future__ import annotations

from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models

from apps.accounts.models import ApiKey

KEY_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,99}$"  # no ":" (it separates Redis key parts)


class Limits(models.Model):
    limit = models.PositiveIntegerField(
        validators=[MinValueValidator(1), MaxValueValidator(1_000_000_000)],
        help_text="Tokens refilled per period.",
    )
    period_ms = models.FloatField(
        validators=[MinValueValidator(1), MaxValueValidator(30 * 86_400_000)],
        help_text="The refill period in milliseconds.",
    )
    burst = models.PositiveIntegerField(
        validators=[MinValueValidator(1), MaxValueValidator(1_000_000_000)],
        help_text="Most tokens available at once (the bucket's size).",
    )

    class Meta:
        abstract = True

    @property
    def emission_interval_us(self) -> int:
        """Microseconds per token, rounded up: integer arithmetic in the script, and the
        rounding can only grant less, never more."""
        return -(-round(self.period_ms * 1000) // self.limit)


class Policy(Limits):
    key = models.CharField(max_length=100, unique=True, validators=[RegexValidator(KEY_PATTERN)])
    shadow = models.BooleanField(
        default=False,
        help_text="Shadow mode: count what this policy would deny, but never deny.",
    )
    description = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["key"]
        verbose_name_plural = "policies"

    def __str__(self) -> str:
        return self.key


class PolicyOverride(Limits):
    """A tier: this API key gets its own bucket with these limits (a premium scraper gets
    more) instead of sharing the policy's bucket."""

    policy = models.ForeignKey(Policy, on_delete=models.CASCADE, related_name="overrides")
    api_key = models.ForeignKey(ApiKey, on_delete=models.CASCADE, related_name="+")
    tier = models.CharField(max_length=50, default="premium")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["policy", "tier", "api_key"]
        constraints = [
            models.UniqueConstraint(fields=["policy", "api_key"], name="one_override_per_key")
        ]

    def __str__(self) -> str:
        return f"{self.policy_id} / {self.tier}"
