"""Writes of the fleet: heartbeats, configuration edits, forgetting silent instances."""

from __future__ import annotations

import datetime as dt
from typing import Any

import orjson
from django.conf import settings
from django.db import connection, transaction

from apps.accounts.services import audit_record
from apps.fleet.models import ScraperInstance, ServiceConfiguration
from apps.fleet.selectors import ServiceConfig, clear_service_config_cache, service_config
from coreadmin.clock import clock
from coreadmin.errors import ValidationFailed
from coreadmin.redaction import redact

_UPSERT = f"""
INSERT INTO {ScraperInstance._meta.db_table}
    (service, instance, version, memory_mb, extra, first_seen_at, last_seen_at, heartbeats)
VALUES (%s, %s, %s, %s, %s::jsonb, %s, %s, 1)
ON CONFLICT (service, instance) DO UPDATE SET
    version = EXCLUDED.version,
    memory_mb = EXCLUDED.memory_mb,
    extra = EXCLUDED.extra,
    last_seen_at = GREATEST({ScraperInstance._meta.db_table}.last_seen_at, EXCLUDED.last_seen_at),
    heartbeats = {ScraperInstance._meta.db_table}.heartbeats + 1
"""


def heartbeat_record(
    *,
    service: str,
    instance: str,
    version: str = "",
    memory_mb: float | None = None,
    extra: dict[str, Any] | None = None,
) -> ServiceConfig:
    """Records that ``instance`` of ``service`` is alive (one upsert) and returns the
    service's current configuration. ``extra`` is redacted before it is stored."""
    extra_json = orjson.dumps(redact(extra or {}))
    if len(extra_json) > settings.FLEET_HEARTBEAT_EXTRA_MAX_BYTES:
        raise ValidationFailed(
            "extra is too large.",
            [
                {
                    "path": "extra",
                    "reason": f"at most {settings.FLEET_HEARTBEAT_EXTRA_MAX_BYTES} bytes of JSON",
                }
            ],
        )
    if b"\\u0000" in extra_json.replace(b"\\\\", b""):
        # Postgres jsonb cannot hold NUL: refuse it clearly rather than fail with a 500.
        raise ValidationFailed(
            "extra contains a NUL character.",
            [{"path": "extra", "reason": "text may not contain \\u0000"}],
        )
    now = clock.now()
    with connection.cursor() as cursor:
        cursor.execute(
            _UPSERT, [service, instance, version, memory_mb, extra_json.decode(), now, now]
        )
    return service_config(service)


@transaction.atomic
def service_configuration_save(
    *, configuration: ServiceConfiguration, actor: str, created: bool
) -> ServiceConfiguration:
    """Saves an edited configuration, audits it and forgets this process's cached copy
    (other processes pick it up within FLEET_CONFIG_CACHE_SECONDS)."""
    configuration.full_clean()
    configuration.save()
    audit_record(
        actor=actor,
        action="fleet.config.create" if created else "fleet.config.update",
        target=configuration.service,
        details=service_config_details(configuration),
    )
    # Now, and again after commit, so a read racing the commit cannot keep the old copy.
    clear_service_config_cache(configuration.service)
    transaction.on_commit(lambda: clear_service_config_cache(configuration.service))
    return configuration


@transaction.atomic
def service_configuration_delete(*, configuration: ServiceConfiguration, actor: str) -> None:
    service = configuration.service
    configuration.delete()
    audit_record(actor=actor, action="fleet.config.delete", target=service)
    clear_service_config_cache(service)
    transaction.on_commit(lambda: clear_service_config_cache(service))


def service_config_details(configuration: ServiceConfiguration) -> dict[str, Any]:
    return {
        "batch_size": configuration.batch_size,
        "rate_limit_policies": list(configuration.rate_limit_policies),
        "max_workers": configuration.max_workers,
        "retry_attempts": configuration.retry_attempts,
        "span_sample_rate": configuration.span_sample_rate,
        "min_log_level": configuration.min_log_level,
    }


def fleet_forget_silent(*, now: dt.datetime | None = None) -> int:
    """Deletes instances silent for more than FLEET_FORGET_AFTER_HOURS; returns how many."""
    cutoff = (now or clock.now()) - dt.timedelta(hours=settings.FLEET_FORGET_AFTER_HOURS)
    deleted, _ = ScraperInstance.objects.filter(last_seen_at__lt=cutoff).delete()
    return deleted
