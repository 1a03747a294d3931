"""Proxies API (API.md, section Proxies): admin CRUD, lease and report for scrapers."""

from __future__ import annotations

from typing import Any

import orjson
from django.http import HttpRequest, HttpResponse
from ninja import Query, Router, Schema
from ninja.responses import Status

from apps.accounts.auth import admin_auth, require_service
from apps.proxies import selectors, services
from apps.proxies.models import Proxy
from apps.proxies.schemas import (
    LeaseIn,
    LeaseOut,
    ProxyCreateIn,
    ProxyListOut,
    ProxyOut,
    ProxyPatchIn,
    ReportIn,
)
from coreadmin.errors import NotFound
from coreadmin.http import ApiRequest

router = Router(tags=["proxies"])


class ListFilters(Schema):
    service: str = ""
    status: str = ""
    country: str = ""
    limit: int = 100
    offset: int = 0


def _get(proxy_id: int) -> Proxy:
    proxy = selectors.proxy_get(proxy_id=proxy_id)
    if proxy is None:
        raise NotFound(f"No proxy {proxy_id}.")
    return proxy


@router.post("/lease", response=LeaseOut)
def lease(request: ApiRequest, payload: LeaseIn) -> HttpResponse:
    """The hot path: the response is LeaseOut's fields serialized directly (orjson), which
    skips a second validation of values we built ourselves."""
    require_service(request.auth, payload.service)
    grant = services.lease_acquire(
        principal=request.auth,
        service=payload.service,
        target=payload.target,
        session=payload.session,
    )
    body = {
        "lease_id": grant.lease_id,
        "proxy_id": grant.proxy_id,
        "proxy_url": grant.proxy_url,
        "expires_at": grant.expires_at,
        "slow_down_ms": grant.slow_down_ms,
    }
    return HttpResponse(orjson.dumps(body), content_type="application/json")


@router.post("/leases/{lease_id}/report", response=ProxyOut)
def report(request: ApiRequest, lease_id: str, payload: ReportIn) -> dict[str, Any]:
    proxy = services.lease_report(
        principal=request.auth,
        lease_id=lease_id,
        outcome=payload.outcome,
        latency_ms=payload.latency_ms,
        status_code=payload.status_code,
    )
    return selectors.proxy_out(proxy)


@router.post("", response={201: ProxyOut}, auth=admin_auth)
def create_proxy(request: ApiRequest, payload: ProxyCreateIn) -> Status:
    proxy = services.proxy_create(
        url=payload.url,
        service=payload.service,
        country=payload.country,
        tags=payload.tags,
        actor=f"key:{request.auth.name}",
    )
    return Status(201, selectors.proxy_out(proxy))


@router.get("", response=ProxyListOut, auth=admin_auth)
def list_proxies(request: HttpRequest, filters: Query[ListFilters]) -> dict[str, Any]:
    proxies = selectors.proxy_list(
        service=filters.service, status=filters.status, country=filters.country
    )
    limit = max(1, min(filters.limit, 1000))
    offset = max(0, filters.offset)
    page = proxies[offset : offset + limit]
    return {"items": [selectors.proxy_out(p) for p in page], "count": proxies.count()}


@router.get("/{proxy_id}", response=ProxyOut, auth=admin_auth)
def get_proxy(request: HttpRequest, proxy_id: int) -> dict[str, Any]:
    return selectors.proxy_out(_get(proxy_id))


@router.patch("/{proxy_id}", response=ProxyOut, auth=admin_auth)
def patch_proxy(request: ApiRequest, proxy_id: int, payload: ProxyPatchIn) -> dict[str, Any]:
    proxy = _get(proxy_id)
    if payload.country is not None or payload.tags is not None:
        if payload.country is not None:
            proxy.country = payload.country.upper()
        if payload.tags is not None:
            proxy.tags = payload.tags
        proxy.save(update_fields=["country", "tags"])
    if payload.status is not None:
        services.proxy_set_status(
            proxy=proxy, status=payload.status, actor=f"key:{request.auth.name}"
        )
    return selectors.proxy_out(_get(proxy_id))
