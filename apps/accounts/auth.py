"""X-API-Key authentication for the ninja API.

Cost per request: no database write, and usually no database read. A verified key is
kept in an in-process cache for API_KEY_CACHE_SECONDS (default 5 s), which is therefore
the bound on how long a revoked or expired key keeps working on a web process after the
change is committed. last_used_at is written at most once per
API_KEY_LAST_USED_INTERVAL_SECONDS (default 60 s) per key and process, by a conditional
UPDATE, so a busy key costs one write a minute, not one per request.
"""

from __future__ import annotations

import datetime as dt
import hmac
import re
import threading
from dataclasses import dataclass

from django.conf import settings
from django.db.models import Q
from django.http import HttpRequest
from ninja.security import APIKeyHeader

from apps.accounts.models import ApiKey
from apps.accounts.services import hash_key
from coreadmin.clock import clock
from coreadmin.errors import ApiError

KEY_FORMAT = re.compile(r"cak_([a-z0-9]{8})_[A-Za-z0-9]{20,128}")


class AuthenticationFailed(ApiError):
    status = 401
    code = "authentication_failed"


class PermissionDenied(ApiError):
    status = 403
    code = "permission_denied"


@dataclass(frozen=True)
class Principal:
    """What a request authenticated as; handlers read it from ``request.auth``."""

    key_id: int
    name: str
    scope: str
    service: str

    @property
    def is_admin(self) -> bool:
        return self.scope == ApiKey.Scope.ADMIN


@dataclass
class _CachedKey:
    principal: Principal
    key_hash: str
    revoked: bool
    expires_at: dt.datetime | None
    fetched_at: float
    last_used_written_at: float


_cache: dict[str, _CachedKey] = {}
_cache_lock = threading.Lock()


def clear_key_cache() -> None:
    with _cache_lock:
        _cache.clear()


def _load(prefix: str, now: float) -> _CachedKey | None:
    row = (
        ApiKey.objects.filter(prefix=prefix)
        .only(
            "id", "name", "scope", "service", "key_hash", "revoked_at", "expires_at", "last_used_at"
        )
        .first()
    )
    if row is None:
        return None
    last_used = row.last_used_at.timestamp() if row.last_used_at else 0.0
    return _CachedKey(
        principal=Principal(key_id=row.id, name=row.name, scope=row.scope, service=row.service),
        key_hash=row.key_hash,
        revoked=row.revoked_at is not None,
        expires_at=row.expires_at,
        fetched_at=now,
        last_used_written_at=last_used,
    )


def _touch_last_used(entry: _CachedKey, now: float) -> None:
    interval = settings.API_KEY_LAST_USED_INTERVAL_SECONDS
    if now - entry.last_used_written_at < interval:
        return
    entry.last_used_written_at = now
    moment = dt.datetime.fromtimestamp(now, tz=dt.UTC)
    threshold = moment - dt.timedelta(seconds=interval)
    ApiKey.objects.filter(
        Q(last_used_at__isnull=True) | Q(last_used_at__lt=threshold), pk=entry.principal.key_id
    ).update(last_used_at=moment)


def authenticate_key(raw_key: str | None) -> Principal:
    if not raw_key:
        raise AuthenticationFailed(
            "Send your API key in the X-API-Key header.", code="api_key_missing"
        )
    match = KEY_FORMAT.fullmatch(raw_key)
    if match is None:
        raise AuthenticationFailed(
            "The API key is malformed; keys look like cak_<8 characters>_<secret>.",
            code="api_key_malformed",
        )
    prefix = match.group(1)
    now = clock.time()
    entry = _cache.get(prefix)
    if entry is None or now - entry.fetched_at >= settings.API_KEY_CACHE_SECONDS:
        entry = _load(prefix, now)
        with _cache_lock:
            if entry is None:
                _cache.pop(prefix, None)
            else:
                _cache[prefix] = entry
    if entry is None or not hmac.compare_digest(entry.key_hash, hash_key(raw_key)):
        raise AuthenticationFailed("The API key is not valid.", code="api_key_invalid")
    if entry.revoked:
        raise AuthenticationFailed("The API key has been revoked.", code="api_key_revoked")
    if entry.expires_at is not None and entry.expires_at.timestamp() <= now:
        raise AuthenticationFailed("The API key has expired.", code="api_key_expired")
    _touch_last_used(entry, now)
    return entry.principal


class ApiKeyAuth(APIKeyHeader):
    """``auth=ApiKeyAuth("admin")`` on a router or operation requires that scope."""

    param_name = "X-API-Key"

    def __init__(self, scope: str = ApiKey.Scope.SCRAPER) -> None:
        super().__init__()
        self.scope = scope

    def __call__(self, request: HttpRequest) -> Principal:
        # Called for every request, missing header included, so that a missing key gets
        # our error code rather than ninja's generic 401.
        principal = authenticate_key(request.headers.get(self.param_name))
        if self.scope == ApiKey.Scope.ADMIN and not principal.is_admin:
            raise PermissionDenied(
                "This endpoint needs an API key with the admin scope.",
                code="insufficient_scope",
                details={"required_scope": "admin", "key_scope": principal.scope},
            )
        return principal

    def authenticate(self, request: HttpRequest, key: str | None) -> Principal:
        return self(request)


scraper_auth = ApiKeyAuth(ApiKey.Scope.SCRAPER)
admin_auth = ApiKeyAuth(ApiKey.Scope.ADMIN)


def require_service(principal: Principal, service: str) -> None:
    """A key restricted to one service may act only for that service."""
    if principal.service and principal.service != service:
        raise PermissionDenied(
            f"This API key may act only for service {principal.service!r}.",
            code="service_not_allowed",
            details={"key_service": principal.service, "requested_service": service},
        )
