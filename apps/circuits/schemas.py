from __future__ import annotations

import datetime as dt
from typing import Literal

from ninja import Field, Schema


class CircuitConfigIn(Schema):
    """Fields left out keep their current value (or the settings default for a new one)."""

    failure_threshold: int | None = Field(default=None, ge=0, le=1_000_000)
    recovery_timeout_ms: float | None = Field(default=None, ge=0, le=7 * 86_400_000)
    half_open_max_calls: int | None = Field(default=None, ge=1, le=10_000)
    success_threshold: int | None = Field(default=None, ge=1, le=10_000)
    failure_rate_threshold: float | None = Field(default=None, ge=0, le=100)
    slow_call_rate_threshold: float | None = Field(default=None, ge=0, le=100)
    slow_call_duration_ms: float | None = Field(default=None, ge=0, le=3_600_000)
    minimum_calls: int | None = Field(default=None, ge=1, le=1_000_000)
    sliding_window_ms: float | None = Field(default=None, ge=1000, le=3_600_000)


class CircuitOut(Schema):
    name: str
    state: str
    failure_count: int
    opened_at: dt.datetime | None
    changed_at: dt.datetime | None
    degraded: bool
    failure_threshold: int
    recovery_timeout_ms: float
    half_open_max_calls: int
    success_threshold: int
    failure_rate_threshold: float
    slow_call_rate_threshold: float
    slow_call_duration_ms: float
    minimum_calls: int
    sliding_window_ms: float


class CircuitListOut(Schema):
    items: list[CircuitOut]
    count: int


class AcquireOut(Schema):
    allowed: bool
    state: str
    retry_after_ms: float
    degraded: bool = Field(description="True when Redis did not answer and we failed open.")
    probe_id: str | None = Field(
        default=None, description="In half_open: send it back with the record call."
    )


class RecordIn(Schema):
    outcome: Literal["success", "failure"]
    duration_ms: float = Field(default=0.0, ge=0)
    probe_id: str = Field(default="", max_length=64)


class ForceIn(Schema):
    state: Literal["forced_open", "forced_closed", "closed"]
    reason: str = Field(default="", max_length=200)


class EventOut(Schema):
    from_state: str
    to_state: str
    at: dt.datetime
    reason: str


class EventListOut(Schema):
    items: list[EventOut]
    count: int
