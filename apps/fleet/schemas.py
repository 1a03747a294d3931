from __future__ import annotations

import datetime as dt
from typing import Any

from ninja import Field, Schema

# Names are shown on pages and stored in text columns: no control characters (NUL).
PRINTABLE = r"^[^\x00-\x1f\x7f]*$"


class HeartbeatIn(Schema):
    instance: str = Field(min_length=1, max_length=200, pattern=PRINTABLE)
    service: str = Field(min_length=1, max_length=100, pattern=PRINTABLE)
    version: str = Field(default="", max_length=64, pattern=PRINTABLE)
    memory_mb: float | None = Field(default=None, ge=0)
    extra: dict[str, Any] = Field(default_factory=dict)


class ConfigOut(Schema):
    batch_size: int
    rate_limit_policies: list[str]
    max_workers: int
    retry_attempts: int
    span_sample_rate: float
    min_log_level: str


class HeartbeatOut(Schema):
    config: ConfigOut
    stale_after_s: int = Field(description="Send the next heartbeat well before this.")
    server_time: dt.datetime


class InstanceOut(Schema):
    service: str
    instance: str
    version: str
    memory_mb: float | None
    last_seen_at: dt.datetime
    first_seen_at: dt.datetime
    live: bool


class InstanceListOut(Schema):
    items: list[InstanceOut]
    count: int
