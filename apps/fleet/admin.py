from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from apps.accounts.services import actor_name
from apps.fleet.models import ScraperInstance, ServiceConfiguration
from apps.fleet.selectors import default_service_config
from apps.fleet.services import service_configuration_delete, service_configuration_save


@admin.register(ServiceConfiguration)
class ServiceConfigurationAdmin(admin.ModelAdmin):
    list_display = [
        "service",
        "batch_size",
        "policies",
        "max_workers",
        "retry_attempts",
        "span_sample_rate",
        "min_log_level",
        "updated_at",
    ]
    list_filter = ["min_log_level"]
    search_fields = ["service"]
    readonly_fields = ["updated_at"]

    @admin.display(description="rate-limit policies")
    def policies(self, obj: ServiceConfiguration) -> str:
        return ", ".join(obj.rate_limit_policies) or "—"

    def get_changeform_initial_data(self, request: HttpRequest) -> dict[str, Any]:
        """A new row starts from the settings' defaults (what the service runs with now)."""
        defaults = default_service_config().as_dict()
        defaults["rate_limit_policies"] = ",".join(defaults["rate_limit_policies"])
        return {**defaults, **super().get_changeform_initial_data(request)}

    def save_model(
        self, request: HttpRequest, obj: ServiceConfiguration, form: Any, change: bool
    ) -> None:
        service_configuration_save(
            configuration=obj, actor=actor_name(request.user), created=not change
        )

    def delete_model(self, request: HttpRequest, obj: ServiceConfiguration) -> None:
        service_configuration_delete(configuration=obj, actor=actor_name(request.user))

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[ServiceConfiguration]):
        for obj in queryset:
            self.delete_model(request, obj)


@admin.register(ScraperInstance)
class ScraperInstanceAdmin(admin.ModelAdmin):
    list_display = ["instance", "service", "version", "memory_mb", "last_seen_at", "heartbeats"]
    list_filter = ["service", "version"]
    search_fields = ["instance", "service"]
    date_hierarchy = "last_seen_at"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
