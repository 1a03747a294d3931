"""Reads shared by the API and the dashboard. Query counts do not grow with rows."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.conf import settings
from django.db.models import Count, Prefetch, Q, QuerySet

from apps.proxies.models import HealthCheck, Lease, Proxy, ProxyBan
from coreadmin.clock import clock


def _active_bans(now: dt.datetime) -> Prefetch:
    return Prefetch(
        "bans",
        queryset=ProxyBan.objects.filter(banned_until__gt=now).order_by("banned_until"),
        to_attr="active_bans",
    )


def proxy_list(
    *, service: str = "", status: str = "", country: str = "", search: str = ""
) -> QuerySet[Proxy]:
    """Proxies with ``active_bans`` prefetched (two queries however many rows)."""
    proxies = Proxy.objects.all().order_by("service", "id")
    if service:
        proxies = proxies.filter(service=service)
    if status:
        proxies = proxies.filter(status=status)
    if country:
        proxies = proxies.filter(country=country.upper())
    if search:
        proxies = proxies.filter(Q(host__icontains=search) | Q(username__icontains=search))
    return proxies.prefetch_related(_active_bans(clock.now()))


def proxy_get(*, proxy_id: int) -> Proxy | None:
    return proxy_list().filter(pk=proxy_id).first()


def proxy_out(proxy: Proxy) -> dict[str, Any]:
    """The API's proxy object (API.md): everything but the password."""
    bans = getattr(proxy, "active_bans", None)
    if bans is None:
        bans = list(proxy.bans.filter(banned_until__gt=clock.now()))
    return {
        "id": proxy.pk,
        "scheme": proxy.scheme,
        "host": proxy.host,
        "port": proxy.port,
        "username": proxy.username,
        "service": proxy.service,
        "country": proxy.country,
        "tags": proxy.tags,
        "status": proxy.status,
        "health_score": round(proxy.health_score, 4),
        "success_rate": round(proxy.success_rate, 4),
        "latency_ms": round(proxy.latency_ms, 1) if proxy.latency_ms is not None else None,
        "last_checked_at": proxy.last_checked_at,
        "last_used_at": proxy.last_used_at,
        "banned_targets": [ban.target for ban in bans],
    }


def service_names() -> list[str]:
    return list(Proxy.objects.order_by("service").values_list("service", flat=True).distinct())


def pool_summaries() -> list[dict[str, Any]]:
    """Per service: total, usable (active and not banned everywhere), frozen, quarantined,
    and whether the usable share is below the slow-down threshold (one query)."""
    now = clock.now()
    rows = (
        Proxy.objects.values("service")
        .annotate(
            # distinct: the join on bans repeats a proxy once per ban
            total=Count("id", distinct=True),
            active=Count("id", filter=Q(status=Proxy.Status.ACTIVE), distinct=True),
            frozen=Count("id", filter=Q(status=Proxy.Status.FROZEN), distinct=True),
            quarantined=Count("id", filter=Q(status=Proxy.Status.QUARANTINED), distinct=True),
            banned=Count(
                "bans__proxy",
                filter=Q(status=Proxy.Status.ACTIVE, bans__banned_until__gt=now),
                distinct=True,
            ),
        )
        .order_by("service")
    )
    out = []
    for row in rows:
        usable = row["active"]
        share = usable / row["total"] if row["total"] else 0.0
        out.append(
            {
                **row,
                "usable": usable,
                "share": share,
                "shrinking": share < settings.PROXY_MIN_USABLE_FRACTION,
            }
        )
    return out


def proxy_health_history(*, proxy: Proxy, limit: int = 200) -> list[HealthCheck]:
    """The newest checks, oldest first (for charts)."""
    return list(reversed(proxy.checks.order_by("-at")[:limit]))


def proxy_recent_leases(*, proxy: Proxy, limit: int = 20) -> QuerySet[Lease]:
    return proxy.leases.select_related("api_key").order_by("-leased_at")[:limit]
