from __future__ import annotations

from ninja import Field, Schema


class LimitsIn(Schema):
    limit: int = Field(ge=1, le=1_000_000_000, description="Tokens refilled per period.")
    period_ms: float = Field(ge=1, le=30 * 86_400_000)
    burst: int | None = Field(
        default=None, ge=1, le=1_000_000_000, description="Bucket size; defaults to limit."
    )


class PolicyIn(LimitsIn):
    shadow: bool = Field(default=False, description="Count what it would deny, never deny.")
    description: str = Field(default="", max_length=200)


class OverrideIn(LimitsIn):
    tier: str = Field(default="premium", min_length=1, max_length=50)


class OverrideOut(Schema):
    api_key_id: int
    api_key_name: str
    tier: str
    limit: int
    period_ms: float
    burst: int


class PolicyOut(Schema):
    key: str
    limit: int
    period_ms: float
    burst: int
    shadow: bool
    description: str
    overrides: list[OverrideOut]


class PolicyListOut(Schema):
    items: list[PolicyOut]
    count: int


class AcquireIn(Schema):
    cost: int = Field(default=1, ge=1, le=1_000_000_000)


class DecisionOut(Schema):
    allowed: bool
    remaining: int
    retry_after_ms: float
    reset_after_ms: float
    policy: str = Field(description="The policy that decided.")
    tier: str = Field(description='"default", or the tier of this API key\'s override.')
    limit: int
    period_ms: float
    burst: int
    shadow: bool = Field(description="Shadow mode: allowed is always true.")
    would_allow: bool = Field(description="What the policy decided (differs in shadow mode).")
    degraded: bool = Field(description="Redis was unreachable: a local bucket decided.")
