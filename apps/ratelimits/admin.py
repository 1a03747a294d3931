from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from apps.accounts.services import actor_name, audit_record
from apps.ratelimits.models import Policy, PolicyOverride
from apps.ratelimits.services import clear_policy_cache


class PolicyOverrideInline(admin.TabularInline):
    model = PolicyOverride
    extra = 0
    fields = ("api_key", "tier", "limit", "period_ms", "burst")
    autocomplete_fields = ("api_key",)


@admin.register(Policy)
class PolicyAdmin(admin.ModelAdmin):
    list_display = ["key", "limit", "period_ms", "burst", "shadow", "updated_at"]
    list_filter = ["shadow"]
    search_fields = ["key", "description"]
    inlines = [PolicyOverrideInline]

    def save_model(self, request: HttpRequest, obj: Policy, form: Any, change: bool) -> None:
        super().save_model(request, obj, form, change)
        audit_record(
            actor=actor_name(request.user),
            action="ratelimit.put",
            target=f"policy {obj.key}",
            details={"fields": list(form.changed_data)},
        )
        clear_policy_cache()

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        super().save_related(request, form, formsets, change)
        clear_policy_cache()
