"""Thin Celery tasks: beat runs the due health checks every minute and prunes history."""

from __future__ import annotations

from celery import shared_task

from apps.proxies import services
from apps.proxies.models import Proxy


@shared_task(name="apps.proxies.tasks.check_due_proxies")
def check_due_proxies() -> int:
    proxies = services.proxies_claim_due_checks()
    services.proxies_check(proxies=proxies)
    return len(proxies)


@shared_task(name="apps.proxies.tasks.check_proxy_now")
def check_proxy_now(proxy_id: int) -> bool | None:
    proxy = Proxy.objects.filter(pk=proxy_id).first()
    if proxy is None:
        return None
    return services.proxies_check(proxies=[proxy])[proxy.pk].ok


@shared_task(name="apps.proxies.tasks.prune_history")
def prune_history() -> int:
    return services.health_history_prune()


@shared_task(name="apps.proxies.tasks.flush_leases")
def flush_leases() -> int:
    return services.leases_flush()
