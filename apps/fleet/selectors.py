"""Reads of the fleet: per-service configuration (cached) and instance lists.

``service_config(service)`` is what other apps call (tracing reads the span sample rate,
logs the minimum level, the client receives it with every heartbeat). One process trusts
its cached copy for FLEET_CONFIG_CACHE_SECONDS (default 5 s): that is how stale an answer
can be after an edit made through another process. An edit saved through
``apps.fleet.services`` clears the saving process's cache at once.
"""

from __future__ import annotations

import datetime as dt
import threading
from dataclasses import asdict, dataclass, fields
from typing import Any

from django.conf import settings
from django.core.signals import setting_changed
from django.db.models import Count, Max, Q, QuerySet, Sum

from apps.fleet.models import ScraperInstance, ServiceConfiguration
from coreadmin.clock import clock


@dataclass(frozen=True)
class ServiceConfig:
    batch_size: int
    rate_limit_policies: tuple[str, ...]
    max_workers: int
    retry_attempts: int
    span_sample_rate: float
    min_log_level: str

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["rate_limit_policies"] = list(self.rate_limit_policies)
        return data


CONFIG_FIELDS = [f.name for f in fields(ServiceConfig)]


def _config(values: dict[str, Any]) -> ServiceConfig:
    values["rate_limit_policies"] = tuple(values["rate_limit_policies"])
    return ServiceConfig(**values)


def default_service_config() -> ServiceConfig:
    """FLEET_DEFAULT_<FIELD> for every field."""
    return _config(
        {name: getattr(settings, f"FLEET_DEFAULT_{name.upper()}") for name in CONFIG_FIELDS}
    )


def config_from_row(row: ServiceConfiguration) -> ServiceConfig:
    return _config({name: getattr(row, name) for name in CONFIG_FIELDS})


_cache: dict[str, tuple[float, ServiceConfig]] = {}
_cache_lock = threading.Lock()


def clear_service_config_cache(service: str | None = None) -> None:
    with _cache_lock:
        if service is None:
            _cache.clear()
        else:
            _cache.pop(service, None)


def service_config(service: str) -> ServiceConfig:
    """The service's configuration, or the settings' defaults when it has no row.

    At most one query per service per FLEET_CONFIG_CACHE_SECONDS per process."""
    now = clock.time()
    cached = _cache.get(service)
    if cached is not None and now - cached[0] < settings.FLEET_CONFIG_CACHE_SECONDS:
        return cached[1]
    row = ServiceConfiguration.objects.filter(service=service).first()
    config = config_from_row(row) if row is not None else default_service_config()
    with _cache_lock:
        _cache[service] = (now, config)
    return config


def _forget_on_setting_change(*, setting: str, **kwargs: Any) -> None:
    # The defaults come from FLEET_DEFAULT_* settings (override_settings in tests).
    if setting.startswith("FLEET_"):
        clear_service_config_cache()


setting_changed.connect(_forget_on_setting_change)


def stale_threshold(now: dt.datetime | None = None) -> dt.datetime:
    return (now or clock.now()) - dt.timedelta(seconds=settings.FLEET_STALE_SECONDS)


def instance_list(*, service: str = "", state: str = "") -> QuerySet[ScraperInstance]:
    instances = ScraperInstance.objects.all().order_by("-last_seen_at", "id")
    if service:
        instances = instances.filter(service=service)
    if state == "live":
        instances = instances.filter(last_seen_at__gte=stale_threshold())
    elif state == "stale":
        instances = instances.filter(last_seen_at__lt=stale_threshold())
    return instances


def fleet_summary() -> dict[str, Any]:
    """Live and stale counts and the live instances' memory, in one query."""
    live = Q(last_seen_at__gte=stale_threshold())
    totals = ScraperInstance.objects.aggregate(
        live=Count("id", filter=live),
        stale=Count("id", filter=~live),
        memory_mb=Sum("memory_mb", filter=live),
        services=Count("service", filter=live, distinct=True),
    )
    return {
        "live": totals["live"] or 0,
        "stale": totals["stale"] or 0,
        "memory_mb": totals["memory_mb"] or 0.0,
        "services": totals["services"] or 0,
    }


def service_overview() -> list[dict[str, Any]]:
    """One row per service that has instances or a configuration: its live and stale
    counts, the versions it runs and its effective configuration. Two queries."""
    live = Q(last_seen_at__gte=stale_threshold())
    counts: dict[str, dict[str, Any]] = {
        row["service"]: dict(row)
        for row in ScraperInstance.objects.values("service").annotate(
            live=Count("id", filter=live),
            stale=Count("id", filter=~live),
            latest_seen_at=Max("last_seen_at"),
            versions=Count("version", filter=live, distinct=True),
        )
    }
    rows = {row.service: row for row in ServiceConfiguration.objects.all()}
    overview = []
    for service in sorted(set(counts) | set(rows)):
        row = rows.get(service)
        stats = counts.get(service, {})
        overview.append(
            {
                "service": service,
                "live": stats.get("live", 0),
                "stale": stats.get("stale", 0),
                "versions": stats.get("versions", 0),
                "last_seen_at": stats.get("latest_seen_at"),
                "config": config_from_row(row) if row else default_service_config(),
                "configuration_id": row.pk if row else None,
            }
        )
    return overview
