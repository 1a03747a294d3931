"""Rate-limit reads shared by the API and the dashboard."""

from __future__ import annotations

from django.db.models import Prefetch, QuerySet

from apps.ratelimits.models import Policy, PolicyOverride


def policy_list(*, q: str = "") -> QuerySet[Policy]:
    overrides = PolicyOverride.objects.select_related("api_key").order_by("tier", "api_key_id")
    policies = Policy.objects.prefetch_related(Prefetch("overrides", queryset=overrides))
    if q:
        policies = policies.filter(key__icontains=q)
    return policies.order_by("key")
