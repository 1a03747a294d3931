"""The rate-limits page: each policy with granted / denied over the last hour, the keys
that hit limits most, and what shadow-mode policies would have denied."""

from __future__ import annotations

from collections import Counter
from typing import Any

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpResponse
from django.shortcuts import render

from apps.circuits.charts import stacked_bars
from apps.ratelimits.selectors import PolicyPanel, policy_list, policy_panels
from coreadmin.http import HtmxHttpRequest

PAGE_SIZE = 25


def _row(panel: PolicyPanel) -> dict[str, Any]:
    return {
        "panel": panel,
        "policy": panel.policy,
        "bars": stacked_bars(
            [
                ("granted", panel.granted),
                ("denied", panel.denied),
                ("shadow", panel.shadow_denied),
            ]
        ),
    }


@login_required
def policy_page(request: HtmxHttpRequest) -> HttpResponse:
    q = request.GET.get("q", "").strip()
    mode = request.GET.get("mode", "")
    policies = policy_list(q=q)
    if mode == "shadow":
        policies = policies.filter(shadow=True)
    elif mode == "enforcing":
        policies = policies.filter(shadow=False)
    page = Paginator(policies, PAGE_SIZE).get_page(request.GET.get("page"))
    panels, degraded = policy_panels(list(page))
    limited: Counter[tuple[str, str]] = Counter()
    for panel in panels:
        if not panel.policy.shadow:
            for caller, count in panel.top_callers:
                limited[(panel.policy.key, caller)] += count
    context = {
        "page": page,
        "rows": [_row(p) for p in panels],
        "top_limited": [(policy, caller, n) for (policy, caller), n in limited.most_common(10)],
        "shadow_rows": [_row(p) for p in panels if p.policy.shadow],
        "q": q,
        "mode": mode,
        "degraded": degraded,
    }
    template = "ratelimits/policies.html"
    if request.htmx and not request.htmx.boosted:
        template += "#policy-panels"
    return render(request, template, context)
