from __future__ import annotations

import datetime as dt
from typing import Literal

from ninja import Field, Schema
from pydantic import BaseModel


# Plain pydantic models for the input: ninja's Schema wraps every object in a getter for
# ORM objects, which costs ~70 us per span; a 5000-span batch would spend a third of a
# second there.
class SpanSchema(BaseModel):
    thread_id: str = Field(min_length=1, max_length=200)
    stage: str = Field(min_length=1, max_length=200)
    name: str | None = Field("", max_length=200)
    parent_stage: str | None = Field(None, max_length=200)
    service: str | None = Field(None, max_length=100)
    started_at: dt.datetime
    duration_ms: float = Field(ge=0, le=86_400_000)
    status: Literal["ok", "error"] = "ok"


class SpansIn(BaseModel):
    batch_id: str | None = Field(
        None,
        min_length=1,
        max_length=200,
        description="Idempotency key, as for dataset writes: a resend stores nothing.",
    )
    spans: list[SpanSchema]


class SpansAccepted(Schema):
    batch_id: str | None = None
    accepted: int
    sampled_out: int
    sample_rates: dict[str, float]


class StageOut(Schema):
    stage: str
    parent_stage: str
    count: int
    error_count: int
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    max_ms: float | None


class StagesOut(Schema):
    items: list[StageOut]
    window_s: int
    service: str | None


class ThreadSpanOut(Schema):
    stage: str
    name: str
    parent_stage: str
    service: str
    started_at: dt.datetime
    duration_ms: float
    status: str
    depth: int
    offset_ms: float


class ThreadOut(Schema):
    thread_id: str
    spans: list[ThreadSpanOut]
    count: int
    total_ms: float
    truncated: bool
