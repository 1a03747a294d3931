"""Rate-limit reads shared by the API and the dashboard."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from django.db.models import Prefetch, QuerySet

from apps.circuits.charts import minute_series
from apps.ratelimits.models import Policy, PolicyOverride
from coreadmin.clock import clock
from coreadmin.failopen import REDIS_ERRORS
from coreadmin.redis import connection
from coreadmin.redis import key as redis_key


def policy_list(*, q: str = "") -> QuerySet[Policy]:
    overrides = PolicyOverride.objects.select_related("api_key").order_by("tier", "api_key_id")
    policies = Policy.objects.prefetch_related(Prefetch("overrides", queryset=overrides))
    if q:
        policies = policies.filter(key__icontains=q)
    return policies.order_by("key")


@dataclass
class PolicyPanel:
    policy: Policy
    granted: list[int] = field(default_factory=list)
    denied: list[int] = field(default_factory=list)
    shadow_denied: list[int] = field(default_factory=list)
    top_callers: list[tuple[str, int]] = field(default_factory=list)

    @property
    def granted_total(self) -> int:
        return sum(self.granted)

    @property
    def denied_total(self) -> int:
        return sum(self.denied)

    @property
    def shadow_total(self) -> int:
        return sum(self.shadow_denied)

    @property
    def limited_total(self) -> int:
        return sum(n for _caller, n in self.top_callers)


def policy_panels(
    policies: list[Policy], *, hours: int = 24, top: int = 5
) -> tuple[list[PolicyPanel], bool]:
    """Per policy: granted / denied / shadow-denied per minute over the last hour, and the
    callers it limited most over the last ``hours`` (denied, or would-deny in shadow
    mode). One Redis round trip. Returns (panels, degraded)."""
    now_us = round(clock.time() * 1_000_000)
    minute_now, hour_now = now_us // 60_000_000, now_us // 3_600_000_000
    try:
        pipe = connection().pipeline(transaction=False)
        for policy in policies:
            pipe.hgetall(redis_key("rl", policy.key, "stats"))
            kind = "shadow" if policy.shadow else "denied"
            for hour in range(hour_now - hours + 1, hour_now + 1):
                pipe.zrevrange(redis_key("rl", policy.key, kind, hour), 0, 49, withscores=True)
        replies = pipe.execute()
    except REDIS_ERRORS:
        return [PolicyPanel(p) for p in policies], True
    panels = []
    per_policy = 1 + hours
    for i, policy in enumerate(policies):
        chunk = replies[i * per_policy : (i + 1) * per_policy]
        stats = chunk[0]
        callers: Counter[str] = Counter()
        for ranking in chunk[1:]:
            for caller, score in ranking:
                callers[caller.decode()] += int(score)
        panels.append(
            PolicyPanel(
                policy=policy,
                granted=minute_series(stats, minute_now, "g"),
                denied=minute_series(stats, minute_now, "d"),
                shadow_denied=minute_series(stats, minute_now, "s"),
                top_callers=callers.most_common(top),
            )
        )
    return panels, False
