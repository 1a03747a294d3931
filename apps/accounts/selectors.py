from __future__ import annotations

from django.db.models import QuerySet

from apps.accounts.models import ApiKey, AuditEntry


def api_key_list(*, scope: str = "", status: str = "") -> QuerySet[ApiKey]:
    keys = ApiKey.objects.all().order_by("-created_at")
    if scope:
        keys = keys.filter(scope=scope)
    if status == "revoked":
        keys = keys.filter(revoked_at__isnull=False)
    elif status == "active":
        keys = keys.filter(revoked_at__isnull=True)
    return keys


def audit_recent(*, limit: int = 20) -> QuerySet[AuditEntry]:
    return AuditEntry.objects.all()[:limit]
