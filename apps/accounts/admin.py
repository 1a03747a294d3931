from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from apps.accounts.models import ApiKey, AuditEntry
from apps.accounts.services import actor_name, api_key_create, api_key_revoke


class ApiKeyCreateForm(forms.ModelForm):
    expires_in_days = forms.IntegerField(
        required=False, min_value=1, help_text="Leave blank for a key that does not expire."
    )

    class Meta:
        model = ApiKey
        fields = ["name", "scope", "service"]


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    list_display = ["name", "masked", "scope", "service", "status", "expires_at", "last_used_at"]
    list_filter = ["scope", "service"]
    search_fields = ["name", "prefix", "service"]
    actions = ["revoke_selected"]
    readonly_fields = [
        "masked",
        "scope",
        "service",
        "expires_at",
        "revoked_at",
        "created_at",
        "created_by",
        "last_used_at",
    ]
    fields = ["name", *readonly_fields]

    @admin.display(description="key")
    def masked(self, obj: ApiKey) -> str:
        return f"cak_{obj.prefix}_…"

    @admin.display(description="status")
    def status(self, obj: ApiKey) -> str:
        if obj.revoked_at:
            return "revoked"
        from coreadmin.clock import clock

        return "expired" if obj.is_expired(clock.now()) else "active"

    def get_form(self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any):
        if obj is None:
            kwargs["form"] = ApiKeyCreateForm
            kwargs["fields"] = ["name", "scope", "service"]
        return super().get_form(request, obj, change=change, **kwargs)

    def get_fields(self, request: HttpRequest, obj: Any = None):
        if obj is None:
            return ["name", "scope", "service", "expires_in_days"]
        return self.fields

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None):
        return [] if obj is None else self.readonly_fields

    def save_model(self, request: HttpRequest, obj: ApiKey, form: Any, change: bool) -> None:
        if change:
            super().save_model(request, obj, form, change)
            return
        created = api_key_create(
            name=form.cleaned_data["name"],
            scope=form.cleaned_data["scope"],
            service=form.cleaned_data.get("service") or "",
            expires_in_days=form.cleaned_data.get("expires_in_days"),
            created_by=request.user,  # type: ignore[arg-type]
        )
        obj.pk = created.api_key.pk
        obj.prefix = created.api_key.prefix
        messages.warning(
            request,
            f"New API key (shown once, copy it now): {created.raw_key}",
        )

    @admin.action(description="Revoke selected API keys")
    def revoke_selected(self, request: HttpRequest, queryset: QuerySet[ApiKey]) -> None:
        for api_key in queryset:
            api_key_revoke(api_key=api_key, actor=actor_name(request.user))
        self.message_user(request, f"Revoked {queryset.count()} key(s).", messages.SUCCESS)


@admin.register(AuditEntry)
class AuditEntryAdmin(admin.ModelAdmin):
    list_display = ["at", "actor", "action", "target"]
    list_filter = ["action"]
    search_fields = ["actor", "action", "target"]
    date_hierarchy = "at"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
