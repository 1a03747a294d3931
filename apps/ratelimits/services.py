"""Rate-limit writes: acquire (GCRA in Redis, or a local bucket when Redis is down) and
the policy and tier configuration."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

from cachetools import LRUCache
from django.conf import settings
from django.db import transaction

from apps.accounts.models import ApiKey
from apps.accounts.services import audit_record
from apps.ratelimits import stats
from apps.ratelimits.lua import GCRA_SCRIPT, decision_from_reply, gcra_args
from apps.ratelimits.models import Limits, Policy, PolicyOverride
from coreadmin.clock import clock
from coreadmin.errors import ApiError, NotFound
from coreadmin.failopen import REDIS_ERRORS, RedisBackoff
from coreadmin.redis import LuaScript
from coreadmin.redis import key as redis_key

script = LuaScript(GCRA_SCRIPT)
backoff = RedisBackoff("ratelimits")
LIMIT_FIELDS = ("limit", "period_ms", "burst")


class CostTooHigh(ApiError):
    status = 422
    code = "validation_error"


@dataclass(frozen=True)
class Decision:
    allowed: bool
    remaining: int
    retry_after_ms: float
    reset_after_ms: float
    policy: str
    tier: str
    limit: int
    period_ms: float
    burst: int
    shadow: bool
    would_allow: bool
    degraded: bool


# --- policies, cached per process ----------------------------------------------------------


@dataclass(frozen=True)
class _Resolved:
    policy: Policy | None
    overrides: dict[int, PolicyOverride]
    fetched_at: float


_cache: dict[str, _Resolved] = {}
_cache_lock = threading.Lock()


def clear_policy_cache() -> None:
    with _cache_lock:
        _cache.clear()


def policy_resolve(*, key: str) -> tuple[Policy | None, dict[int, PolicyOverride]]:
    """The policy and its overrides by API key id; one query, cached for
    RATELIMIT_POLICY_CACHE_SECONDS (unknown keys too, so a flood of them stays cheap)."""
    now = clock.time()
    cached = _cache.get(key)
    if cached is None or not (
        0 <= now - cached.fetched_at < settings.RATELIMIT_POLICY_CACHE_SECONDS
    ):
        policy = Policy.objects.prefetch_related("overrides").filter(key=key).first()
        overrides = {o.api_key_id: o for o in policy.overrides.all()} if policy else {}
        cached = _Resolved(policy, overrides, now)
        with _cache_lock:
            _cache[key] = cached
    return cached.policy, cached.overrides


# --- acquire -------------------------------------------------------------------------------

_local: LRUCache = LRUCache(maxsize=10_000)
_local_lock = threading.Lock()


def _local_gcra(bucket: str, now: int, t: int, burst: int, cost: int) -> tuple[int, int, int, int]:
    """The script's arithmetic on an in-process bucket (Redis is unreachable)."""
    global _local
    with _local_lock:
        if _local.maxsize != settings.RATELIMIT_LOCAL_BUCKETS:
            _local = LRUCache(maxsize=settings.RATELIMIT_LOCAL_BUCKETS)
        tat = max(_local.get(bucket, now), now)
        new_tat = tat + t * cost
        allow_at = new_tat - t * burst
        if now >= allow_at:
            _local[bucket] = new_tat
            return 1, 0, (now - allow_at) // t, new_tat - now
        return 0, allow_at - now, (t * burst - (tat - now)) // t, tat - now


def clear_local_buckets() -> None:
    with _local_lock:
        _local.clear()


def ratelimit_acquire(*, key: str, cost: int = 1, api_key_id: int, caller: str) -> Decision:
    policy, overrides = policy_resolve(key=key)
    if policy is None:
        raise NotFound(f"There is no rate-limit policy {key!r}.")
    override = overrides.get(api_key_id)
    limits: Limits = override or policy
    tier = override.tier if override else "default"
    if cost > limits.burst:
        raise CostTooHigh(
            f"A cost of {cost} can never be granted: the bucket holds {limits.burst} tokens.",
            details={"fields": [{"path": "cost", "reason": f"at most {limits.burst}"}]},
        )
    bucket = key_bucket(policy.key, api_key_id if override else None)
    t = limits.emission_interval_us
    now = round(clock.time() * 1_000_000)
    degraded = False
    result: Any = None
    if backoff.should_try():
        try:
            result = script([bucket], gcra_args(now=now, t=t, burst=limits.burst, cost=cost))
            backoff.succeeded()
            would, retry, remaining, reset = decision_from_reply(
                int(result), now=now, t=t, burst=limits.burst, cost=cost
            )
            stats.record(
                policy=policy.key,
                shadow=policy.shadow,
                would_allow=bool(would),
                caller=caller,
                now_us=now,
            )
        except REDIS_ERRORS:
            backoff.failed()
            result = None
    if result is None:
        degraded = True
        backoff.count_degraded()
        would, retry, remaining, reset = _local_gcra(bucket, now, t, limits.burst, cost)
    allowed = bool(would) or policy.shadow
    return Decision(
        allowed=allowed,
        remaining=max(0, remaining),
        retry_after_ms=0.0 if allowed else retry / 1000,
        reset_after_ms=reset / 1000,
        policy=policy.key,
        tier=tier,
        limit=limits.limit,
        period_ms=limits.period_ms,
        burst=limits.burst,
        shadow=policy.shadow,
        would_allow=bool(would),
        degraded=degraded,
    )


def key_bucket(policy_key: str, api_key_id: int | None) -> str:
    if api_key_id is None:
        return redis_key("rl", policy_key)
    return redis_key("rl", policy_key, "k", api_key_id)


# --- configuration -------------------------------------------------------------------------


def _apply[L: Limits](row: L, values: dict[str, Any]) -> L:
    """Sets the given fields (burst defaults to limit), validates and saves."""
    for field, value in values.items():
        setattr(row, field, value)
    if row.burst is None:
        row.burst = row.limit
    row.full_clean()
    row.save()
    return row


@transaction.atomic
def policy_put(*, key: str, values: dict[str, Any], actor: str) -> Policy:
    policy = _apply(Policy.objects.filter(key=key).first() or Policy(key=key), values)
    audit_record(actor=actor, action="ratelimit.put", target=f"policy {key}", details=values)
    clear_policy_cache()
    return policy


@transaction.atomic
def policy_delete(*, policy: Policy, actor: str) -> None:
    audit_record(actor=actor, action="ratelimit.delete", target=f"policy {policy.key}")
    policy.delete()
    clear_policy_cache()


@transaction.atomic
def override_put(
    *, policy: Policy, api_key: ApiKey, values: dict[str, Any], actor: str
) -> PolicyOverride:
    override = PolicyOverride.objects.filter(policy=policy, api_key=api_key).first()
    override = _apply(override or PolicyOverride(policy=policy, api_key=api_key), values)
    audit_record(
        actor=actor,
        action="ratelimit.override",
        target=f"policy {policy.key} / key {api_key.name}",
        details=values,
    )
    clear_policy_cache()
    return override


@transaction.atomic
def override_delete(*, override: PolicyOverride, actor: str) -> None:
    audit_record(
        actor=actor,
        action="ratelimit.override_delete",
        target=f"policy {override.policy.key} / key {override.api_key.name}",
    )
    override.delete()
    clear_policy_cache()
