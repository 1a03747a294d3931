from __future__ import annotations

from django.contrib import admin

from apps.tracing.models import StageHour


@admin.register(StageHour)
class StageHourAdmin(admin.ModelAdmin):
    """Read-only: sketches are written by ingestion; the tracker page reads them."""

    list_display = ["bucket", "service", "stage", "count", "error_count", "max_ms"]
    list_filter = ["service"]
    search_fields = ["stage", "service"]
    date_hierarchy = "bucket"
    exclude = ["bins"]

    def has_add_permission(self, request: object) -> bool:
        return False

    def has_change_permission(self, request: object, obj: object = None) -> bool:
        return False
