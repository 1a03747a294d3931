from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from apps.accounts.services import actor_name, audit_record
from apps.proxies import pool, services
from apps.proxies.models import HealthCheck, Lease, PoolPolicy, Proxy, ProxyBan


class ProxyForm(forms.ModelForm):
    """The password is write-only: never rendered back; left blank, it is kept."""

    new_password = forms.CharField(
        label="Password",
        required=False,
        strip=False,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text="Write-only. Leave blank to keep the current password.",
    )
    clear_password = forms.BooleanField(required=False, label="Remove the password")

    class Meta:
        model = Proxy
        fields = ["scheme", "host", "port", "username", "service", "country", "tags", "status"]


class BanInline(admin.TabularInline):
    model = ProxyBan
    extra = 0
    fields = ("target", "count", "banned_at", "banned_until")
    readonly_fields = ("target", "count", "banned_at", "banned_until")
    can_delete = True

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Proxy)
class ProxyAdmin(admin.ModelAdmin):
    form = ProxyForm
    list_display = [
        "id",
        "display_url",
        "service",
        "country",
        "status",
        "health",
        "success",
        "latency",
        "last_checked_at",
        "last_used_at",
    ]
    list_filter = ["status", "service", "country", "scheme"]
    search_fields = ["host", "username", "service"]
    actions = ["freeze", "unfreeze", "check_now"]
    inlines = [BanInline]
    health_fields = (
        "health_score",
        "success_rate",
        "latency_ms",
        "consecutive_failures",
        "quarantine_attempts",
        "next_check_at",
        "last_checked_at",
        "last_used_at",
    )
    readonly_fields = ("password_set", *health_fields)
    fieldsets = [
        (
            None,
            {
                "fields": (
                    "scheme",
                    "host",
                    "port",
                    "username",
                    "password_set",
                    "new_password",
                    "clear_password",
                    "service",
                    "country",
                    "tags",
                    "status",
                )
            },
        ),
        ("Health", {"fields": health_fields}),
    ]

    @admin.display(description="password")
    def password_set(self, obj: Proxy) -> str:
        return "set (hidden)" if obj.has_password else "none"

    @admin.display(description="health", ordering="health_score")
    def health(self, obj: Proxy) -> str:
        return f"{obj.health_score:.2f}"

    @admin.display(description="success", ordering="success_rate")
    def success(self, obj: Proxy) -> str:
        return f"{obj.success_rate:.0%}"

    @admin.display(description="latency", ordering="latency_ms")
    def latency(self, obj: Proxy) -> str:
        return f"{obj.latency_ms:.0f} ms" if obj.latency_ms is not None else "-"

    def save_model(self, request: HttpRequest, obj: Proxy, form: Any, change: bool) -> None:
        if form.cleaned_data.get("clear_password"):
            obj.password_encrypted = ""
        elif form.cleaned_data.get("new_password"):
            obj.set_password(form.cleaned_data["new_password"])
        previous_service = (
            Proxy.objects.filter(pk=obj.pk).values_list("service", flat=True).first()
            if change
            else None
        )
        super().save_model(request, obj, form, change)
        for service in {obj.service, previous_service} - {None}:
            pool.pool_forget(service=str(service))
        audit_record(
            actor=actor_name(request.user),
            action="proxy.change" if change else "proxy.create",
            target=str(obj),
            details={"fields": sorted(form.changed_data)},
        )

    def save_formset(self, request: HttpRequest, form: Any, formset: Any, change: bool) -> None:
        """Lifting a ban (deleting its row) takes effect for leasing at once."""
        super().save_formset(request, form, formset, change)
        for ban in getattr(formset, "deleted_objects", []):
            if isinstance(ban, ProxyBan):
                pool.pool_unban(
                    service=form.instance.service, target=ban.target, proxy_id=ban.proxy_id
                )
                audit_record(
                    actor=actor_name(request.user),
                    action="proxy.unban",
                    target=str(form.instance),
                    details={"target": ban.target},
                )

    def delete_model(self, request: HttpRequest, obj: Proxy) -> None:
        service = obj.service
        super().delete_model(request, obj)
        pool.pool_forget(service=service)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Proxy]) -> None:
        services_touched = set(queryset.values_list("service", flat=True))
        super().delete_queryset(request, queryset)
        for service in services_touched:
            pool.pool_forget(service=service)

    def _set_status(self, request: HttpRequest, queryset: QuerySet[Proxy], status: str) -> None:
        for proxy in queryset:
            services.proxy_set_status(proxy=proxy, status=status, actor=actor_name(request.user))
        self.message_user(request, f"{queryset.count()} proxies now {status}.", messages.SUCCESS)

    @admin.action(description="Freeze selected proxies (never leased)")
    def freeze(self, request: HttpRequest, queryset: QuerySet[Proxy]) -> None:
        self._set_status(request, queryset, Proxy.Status.FROZEN)

    @admin.action(description="Unfreeze selected proxies")
    def unfreeze(self, request: HttpRequest, queryset: QuerySet[Proxy]) -> None:
        self._set_status(request, queryset, Proxy.Status.ACTIVE)

    @admin.action(description="Check selected proxies now")
    def check_now(self, request: HttpRequest, queryset: QuerySet[Proxy]) -> None:
        proxies = list(queryset[:50])  # checked in the request, PROXY_CHECK_CONCURRENCY at once
        results = services.proxies_check(proxies=proxies)
        passed = sum(result.ok for result in results.values())
        audit_record(
            actor=actor_name(request.user),
            action="proxy.check",
            target=f"{len(proxies)} proxies",
            details={"passed": passed},
        )
        self.message_user(request, f"{passed} of {len(proxies)} proxies passed their check.")


@admin.register(PoolPolicy)
class PoolPolicyAdmin(admin.ModelAdmin):
    list_display = ["service", "strategy", "max_leases_per_proxy", "lease_seconds"]

    def save_model(self, request: HttpRequest, obj: PoolPolicy, form: Any, change: bool) -> None:
        super().save_model(request, obj, form, change)
        services.clear_policy_cache()


@admin.register(Lease)
class LeaseAdmin(admin.ModelAdmin):
    list_display = ["id", "proxy", "api_key", "target", "session", "leased_at", "outcome"]
    list_filter = ["outcome", "service"]
    search_fields = ["id", "target", "session"]
    list_select_related = ["proxy", "api_key"]
    date_hierarchy = "leased_at"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(HealthCheck)
class HealthCheckAdmin(admin.ModelAdmin):
    list_display = ["at", "proxy", "ok", "latency_ms", "status_code", "error"]
    list_filter = ["ok"]
    list_select_related = ["proxy"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
