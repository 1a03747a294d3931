from __future__ import annotations

import datetime as dt
from typing import Literal

from ninja import Field, Schema


class ProxyCreateIn(Schema):
    url: str = Field(min_length=1, max_length=2000, description="scheme://user:pass@host:port")
    service: str = Field(min_length=1, max_length=100)
    country: str = Field(default="", max_length=2)
    tags: list[str] = Field(default_factory=list, max_length=50)


class ProxyPatchIn(Schema):
    status: Literal["active", "frozen"] | None = None
    country: str | None = Field(default=None, max_length=2)
    tags: list[str] | None = Field(default=None, max_length=50)


class ProxyOut(Schema):
    """A proxy as the API shows it: never its password."""

    id: int
    scheme: str
    host: str
    port: int
    username: str
    service: str
    country: str
    tags: list[str]
    status: str
    health_score: float
    success_rate: float
    latency_ms: float | None
    last_checked_at: dt.datetime | None
    last_used_at: dt.datetime | None
    banned_targets: list[str]


class ProxyListOut(Schema):
    items: list[ProxyOut]
    count: int


class LeaseIn(Schema):
    service: str = Field(min_length=1, max_length=100)
    target: str = Field(min_length=1, max_length=255)
    session: str = Field(default="", max_length=255)


class LeaseOut(Schema):
    lease_id: str
    proxy_id: int
    proxy_url: str = Field(description="With the password: shown only to the leasing key.")
    expires_at: dt.datetime
    slow_down_ms: float = Field(
        description="0 normally; above 0 when the usable share of the pool is low: wait this "
        "long between requests to stop a ban wave spreading to the survivors."
    )


class ReportIn(Schema):
    outcome: Literal["success", "failure", "timeout", "banned"]
    latency_ms: float | None = Field(default=None, ge=0)
    status_code: int | None = Field(default=None, ge=100, le=599)
