from __future__ import annotations

from django.contrib import admin

from apps.caching.models import CacheStat


@admin.register(CacheStat)
class CacheStatAdmin(admin.ModelAdmin):
    list_display = ["at", "cache", "service", "namespace", "source", "hits", "misses", "evictions"]
    list_filter = ["source", "service"]
    search_fields = ["cache", "namespace"]
    date_hierarchy = "at"
    readonly_fields = [f.name for f in CacheStat._meta.fields]

    def has_add_permission(self, request: object) -> bool:
        return False
