from __future__ import annotations

from typing import Any, ClassVar

from django.contrib import admin
from django.http import HttpRequest

from apps.accounts.services import actor_name, audit_record
from apps.circuits.models import Circuit, CircuitEvent
from apps.circuits.services import CONFIG_FIELDS, clear_config_cache


class CircuitEventInline(admin.TabularInline):
    model = CircuitEvent
    extra = 0
    can_delete = False
    fields = ("at", "from_state", "to_state", "reason")
    readonly_fields = ("at", "from_state", "to_state", "reason")
    ordering = ["-at", "-id"]
    max_num = 0
    show_change_link = False

    def get_queryset(self, request: HttpRequest) -> Any:
        return super().get_queryset(request).order_by("-at", "-id")


@admin.register(Circuit)
class CircuitAdmin(admin.ModelAdmin):
    """Configuration only: the live state and forcing are on the dashboard (audited,
    applied to Redis atomically); forced_state is shown here read-only."""

    list_display = ["name", *CONFIG_FIELDS[:3], "failure_rate_threshold", "forced_state"]
    search_fields = ["name"]
    list_filter = ["forced_state"]
    readonly_fields = ["forced_state", "created_at", "updated_at"]
    fieldsets: ClassVar[Any] = [
        (None, {"fields": ["name"]}),
        (
            "Consecutive failures (the contract's rule)",
            {
                "fields": [
                    "failure_threshold",
                    "recovery_timeout_ms",
                    "half_open_max_calls",
                    "success_threshold",
                ]
            },
        ),
        (
            "Rate rules over a sliding window (resilience4j style)",
            {
                "fields": [
                    "failure_rate_threshold",
                    "slow_call_rate_threshold",
                    "slow_call_duration_ms",
                    "minimum_calls",
                    "sliding_window_ms",
                ]
            },
        ),
        ("State", {"fields": ["forced_state", "created_at", "updated_at"]}),
    ]
    inlines = [CircuitEventInline]

    def save_model(self, request: HttpRequest, obj: Circuit, form: Any, change: bool) -> None:
        super().save_model(request, obj, form, change)
        audit_record(
            actor=actor_name(request.user),
            action="circuit.configure",
            target=f"circuit {obj.name}",
            details={"fields": list(form.changed_data)},
        )
        clear_config_cache()
