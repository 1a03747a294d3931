from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.http import HttpRequest

from apps.accounts.services import actor_name
from apps.datasets.mapping import parse_definition
from apps.datasets.models import Dataset, Record, RetryAttempt, RetryItem
from apps.datasets.services import dataset_delete, dataset_put
from coreadmin.errors import ApiError


class DatasetForm(forms.ModelForm):
    """Validated by the same rules as PUT /api/v1/datasets/{name}."""

    class Meta:
        model = Dataset
        fields = ["name", "key_fields", "fields"]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        _, _, errors = parse_definition(data.get("key_fields"), data.get("fields"))
        for error in errors:
            target = "key_fields" if error["path"].startswith("key_fields") else "fields"
            self.add_error(target, f"{error['path']}: {error['reason']}")
        return data


@admin.register(Dataset)
class DatasetAdmin(admin.ModelAdmin):
    form = DatasetForm
    list_display = ["name", "key_fields", "updated_at"]
    search_fields = ["name"]
    readonly_fields = ["created_at", "updated_at"]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return [*self.readonly_fields, "name"] if obj else self.readonly_fields

    def save_model(self, request: HttpRequest, obj: Dataset, form: Any, change: bool) -> None:
        try:
            saved, _ = dataset_put(
                name=obj.name,
                key_fields=obj.key_fields,
                fields=obj.fields,
                actor=actor_name(request.user),
            )
        except ApiError as exc:
            self.message_user(request, f"Not saved: {exc.message}", level=messages.ERROR)
            return
        obj.pk = saved.pk
        obj.refresh_from_db()

    # Deletes go through dataset_delete: it waits for batches being written (records
    # have no database FK; see Record.dataset) and is audited.
    def delete_model(self, request: HttpRequest, obj: Dataset) -> None:
        dataset_delete(dataset_id=obj.pk, actor=actor_name(request.user))

    def delete_queryset(self, request: HttpRequest, queryset: Any) -> None:
        for pk in queryset.values_list("pk", flat=True):
            dataset_delete(dataset_id=pk, actor=actor_name(request.user))


@admin.register(Record)
class RecordAdmin(admin.ModelAdmin):
    list_display = ["id", "dataset", "key", "updated_at"]
    list_filter = ["dataset"]
    list_select_related = ["dataset"]
    show_full_result_count = False
    readonly_fields = ["dataset", "key", "data", "created_at", "updated_at"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False


class RetryAttemptInline(admin.TabularInline):
    model = RetryAttempt
    extra = 0
    can_delete = False
    readonly_fields = ["number", "at", "ok", "code", "message", "actor"]

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(RetryItem)
class RetryItemAdmin(admin.ModelAdmin):
    """Read-only here: retry, edit and discard from the dashboard, where they are audited."""

    list_display = ["id", "dataset", "status", "code", "attempts", "failed_at", "next_attempt_at"]
    list_filter = ["status", "code", "dataset"]
    list_select_related = ["dataset"]
    inlines = [RetryAttemptInline]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
