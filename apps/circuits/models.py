"""Circuit configuration and its transition history (the system of record).

The live state (closed / open / half_open / forced_*) and the counters live in Redis
(apps/circuits/redis_state.py); Postgres keeps the configuration, the forced state an
operator chose (so it survives the Redis key expiring) and one row per transition.
"""

from __future__ import annotations

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,99}$"  # no ":" (it separates Redis key parts)


class State(models.TextChoices):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"
    FORCED_OPEN = "forced_open"
    FORCED_CLOSED = "forced_closed"


# Defaults come from settings (CIRCUIT_DEFAULTS); named functions so migrations can refer
# to them.
def default_failure_threshold() -> int:
    return int(settings.CIRCUIT_DEFAULTS["failure_threshold"])


def default_recovery_timeout_ms() -> float:
    return float(settings.CIRCUIT_DEFAULTS["recovery_timeout_ms"])


def default_half_open_max_calls() -> int:
    return int(settings.CIRCUIT_DEFAULTS["half_open_max_calls"])


def default_success_threshold() -> int:
    return int(settings.CIRCUIT_DEFAULTS["success_threshold"])


def default_failure_rate_threshold() -> float:
    return float(settings.CIRCUIT_DEFAULTS["failure_rate_threshold"])


def default_slow_call_rate_threshold() -> float:
    return float(settings.CIRCUIT_DEFAULTS["slow_call_rate_threshold"])


def default_slow_call_duration_ms() -> float:
    return float(settings.CIRCUIT_DEFAULTS["slow_call_duration_ms"])


def default_minimum_calls() -> int:
    return int(settings.CIRCUIT_DEFAULTS["minimum_calls"])


def default_sliding_window_ms() -> float:
    return float(settings.CIRCUIT_DEFAULTS["sliding_window_ms"])


class Circuit(models.Model):
    name = models.CharField(max_length=100, unique=True, validators=[RegexValidator(NAME_PATTERN)])
    failure_threshold = models.PositiveIntegerField(
        default=default_failure_threshold,
        help_text="Consecutive failures that open the circuit (0 turns the rule off).",
    )
    recovery_timeout_ms = models.FloatField(
        default=default_recovery_timeout_ms,
        validators=[MinValueValidator(0)],
        help_text="How long an open circuit refuses calls before admitting probes.",
    )
    half_open_max_calls = models.PositiveIntegerField(
        default=default_half_open_max_calls,
        validators=[MinValueValidator(1)],
        help_text="Probes admitted at once in half_open, fleet-wide.",
    )
    success_threshold = models.PositiveIntegerField(
        default=default_success_threshold,
        validators=[MinValueValidator(1)],
        help_text="Successful probes that close a half-open circuit.",
    )
    failure_rate_threshold = models.FloatField(
        default=default_failure_rate_threshold,
        validators=[MinValueValidator(0), MaxValueValidator(100)],
        help_text="Open when this percentage of calls in the sliding window failed (0 = off).",
    )
    slow_call_rate_threshold = models.FloatField(
        default=default_slow_call_rate_threshold,
        validators=[MinValueValidator(0), MaxValueValidator(100)],
        help_text="Open when this percentage of calls in the window was slow (0 = off).",
    )
    slow_call_duration_ms = models.FloatField(
        default=default_slow_call_duration_ms,
        validators=[MinValueValidator(0)],
        help_text="A call at least this long counts as slow.",
    )
    minimum_calls = models.PositiveIntegerField(
        default=default_minimum_calls,
        validators=[MinValueValidator(1)],
        help_text="The rate rules judge a window only once it holds this many calls.",
    )
    sliding_window_ms = models.FloatField(
        default=default_sliding_window_ms,
        validators=[MinValueValidator(1000), MaxValueValidator(3_600_000)],
        help_text="Length of the time-based sliding window of the rate rules.",
    )
    forced_state = models.CharField(
        max_length=16,
        blank=True,
        choices=[
            ("", "not forced"),
            (State.FORCED_OPEN, "forced open"),
            (State.FORCED_CLOSED, "forced closed"),
        ],
        help_text="Set by operators (force buttons or API); kept here so it outlives Redis.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class CircuitEvent(models.Model):
    """One state transition, written exactly once: ``event_id`` is minted by the Lua
    script that made the transition, and (circuit, event_id) is unique."""

    circuit = models.ForeignKey(Circuit, on_delete=models.CASCADE, related_name="events")
    event_id = models.CharField(max_length=40)
    from_state = models.CharField(max_length=16, choices=State.choices)
    to_state = models.CharField(max_length=16, choices=State.choices)
    reason = models.CharField(max_length=255)
    at = models.DateTimeField()

    class Meta:
        ordering = ["-at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["circuit", "event_id"], name="circuit_event_once")
        ]
        indexes = [models.Index(fields=["circuit", "-at"], name="circuit_event_recent")]

    def __str__(self) -> str:
        return f"{self.circuit_id}: {self.from_state} -> {self.to_state}"
