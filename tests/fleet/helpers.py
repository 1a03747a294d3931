from __future__ import annotations

from typing import Any

from apps.fleet.models import ServiceConfiguration


def configure_service(service: str = "reddit", **fields: Any) -> ServiceConfiguration:
    """A service's configuration row: small defaults, overridden by ``fields``."""
    values: dict[str, Any] = {
        "batch_size": 1,
        "max_workers": 1,
        "retry_attempts": 1,
        "span_sample_rate": 0.1,
        "min_log_level": "info",
    }
    values.update(fields)
    return ServiceConfiguration.objects.create(service=service, **values)
