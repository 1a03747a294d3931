"""Key management for tools (admin scope). Scrapers never need these."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from django.shortcuts import get_object_or_404
from ninja import Router
from ninja.responses import Status

from apps.accounts.auth import admin_auth
from apps.accounts.models import ApiKey
from apps.accounts.schemas import ApiKeyCreatedOut, ApiKeyCreateIn, ApiKeyListOut, ApiKeyOut
from apps.accounts.selectors import api_key_list
from apps.accounts.services import api_key_create, api_key_revoke, audit_record
from coreadmin.http import ApiRequest

router = Router(tags=["accounts"], auth=admin_auth)


@router.post("", response={201: ApiKeyCreatedOut})
def create_key(request: ApiRequest, payload: ApiKeyCreateIn) -> Status:
    created = api_key_create(
        name=payload.name,
        scope=payload.scope,
        service=payload.service,
        expires_in_days=payload.expires_days,
    )
    audit_record(
        actor=f"key:{request.auth.name}",
        action="api_key.create",  # type: ignore[attr-defined]
        target=str(created.api_key),
    )
    key = created.api_key
    return Status(201, {**ApiKeyOut.from_orm(key).dict(), "key": created.raw_key})


@router.get("", response=ApiKeyListOut)
def list_keys(request: HttpRequest, scope: str = "", status: str = "") -> dict[str, Any]:
    keys = list(api_key_list(scope=scope, status=status)[:500])
    return {"items": keys, "count": len(keys)}


@router.post("/{key_id}/revoke", response=ApiKeyOut)
def revoke_key(request: ApiRequest, key_id: int) -> ApiKey:
    api_key = get_object_or_404(ApiKey, pk=key_id)
    return api_key_revoke(api_key=api_key, actor=f"key:{request.auth.name}")  # type: ignore[attr-defined]
