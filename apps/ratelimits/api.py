"""Fleet-wide rate limits (API.md, "Rate limits")."""

from __future__ import annotations

from typing import Any

import orjson
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import HttpRequest, HttpResponse
from ninja import Path, Router
from ninja.responses import Status

from apps.accounts.auth import admin_auth
from apps.accounts.models import ApiKey
from apps.ratelimits.models import KEY_PATTERN, Policy
from apps.ratelimits.schemas import (
    AcquireIn,
    DecisionOut,
    OverrideIn,
    PolicyIn,
    PolicyListOut,
    PolicyOut,
)
from apps.ratelimits.selectors import policy_list
from apps.ratelimits.services import (
    override_delete,
    override_put,
    policy_delete,
    policy_put,
    ratelimit_acquire,
)
from coreadmin.errors import NotFound, ValidationFailed
from coreadmin.http import ApiRequest

router = Router(tags=["ratelimits"])
PolicyKey = Path(..., pattern=KEY_PATTERN, max_length=100)


def _out(policy: Policy) -> dict[str, Any]:
    return {
        "key": policy.key,
        "limit": policy.limit,
        "period_ms": policy.period_ms,
        "burst": policy.burst,
        "shadow": policy.shadow,
        "description": policy.description,
        "overrides": [
            {
                "api_key_id": o.api_key_id,
                "api_key_name": o.api_key.name,
                "tier": o.tier,
                "limit": o.limit,
                "period_ms": o.period_ms,
                "burst": o.burst,
            }
            for o in policy.overrides.all()
        ],
    }


def _policy(key: str) -> Policy:
    policy = policy_list().filter(key=key).first()
    if policy is None:
        raise NotFound(f"There is no rate-limit policy {key!r}.")
    return policy


def _invalid(exc: DjangoValidationError) -> ValidationFailed:
    fields = [{"path": f, "reason": " ".join(m)} for f, m in exc.message_dict.items()]
    return ValidationFailed("The policy is not valid; see details.fields.", fields)


@router.get("", response=PolicyListOut)
def list_policies(request: HttpRequest):
    policies = list(policy_list()[:500])
    return {"items": [_out(p) for p in policies], "count": len(policies)}


@router.get("/{key}", response=PolicyOut)
def get_policy(request: HttpRequest, key: str = PolicyKey):
    return _out(_policy(key))


@router.put("/{key}", response=PolicyOut, auth=admin_auth)
def put_policy(request: ApiRequest, payload: PolicyIn, key: str = PolicyKey):
    try:
        policy_put(key=key, values=payload.dict(), actor=f"key:{request.auth.name}")
    except DjangoValidationError as exc:
        raise _invalid(exc) from exc
    return _out(_policy(key))


@router.delete("/{key}", response={204: None}, auth=admin_auth)
def delete_policy(request: ApiRequest, key: str = PolicyKey):
    policy_delete(policy=_policy(key), actor=f"key:{request.auth.name}")
    return Status(204, None)


@router.put("/{key}/overrides/{api_key_id}", response=PolicyOut, auth=admin_auth)
def put_override(request: ApiRequest, payload: OverrideIn, api_key_id: int, key: str = PolicyKey):
    policy = _policy(key)
    api_key = ApiKey.objects.filter(pk=api_key_id).first()
    if api_key is None:
        raise NotFound(f"There is no API key with id {api_key_id}.")
    try:
        override_put(
            policy=policy, api_key=api_key, values=payload.dict(), actor=f"key:{request.auth.name}"
        )
    except DjangoValidationError as exc:
        raise _invalid(exc) from exc
    return _out(_policy(key))


@router.delete("/{key}/overrides/{api_key_id}", response=PolicyOut, auth=admin_auth)
def delete_override(request: ApiRequest, api_key_id: int, key: str = PolicyKey):
    policy = _policy(key)
    override = policy.overrides.filter(api_key_id=api_key_id).select_related("api_key").first()
    if override is None:
        raise NotFound(f"Policy {key!r} has no override for API key {api_key_id}.")
    override_delete(override=override, actor=f"key:{request.auth.name}")
    return _out(_policy(key))


@router.post("/{key}/acquire", response=DecisionOut)
def acquire(request: ApiRequest, payload: AcquireIn, key: str = PolicyKey):
    """The hot path: the Decision dataclass has exactly DecisionOut's fields, so it is
    serialised directly (schemathesis checks the answers against the schema)."""
    principal = request.auth
    decision = ratelimit_acquire(
        key=key,
        cost=payload.cost,
        api_key_id=principal.key_id,
        caller=f"{principal.name}#{principal.key_id}",
    )
    return HttpResponse(orjson.dumps(decision), content_type="application/json")
