from __future__ import annotations

import datetime as dt
import hashlib
import secrets
import string
from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser, User
from django.db import transaction

from apps.accounts.models import ApiKey, AuditEntry
from coreadmin.clock import clock

KEY_PREFIX_ALPHABET = string.ascii_lowercase + string.digits
KEY_SECRET_ALPHABET = string.ascii_letters + string.digits
KEY_SECRET_LENGTH = 40


def hash_key(raw_key: str) -> str:
    return hashlib.sha256(raw_key.encode()).hexdigest()


@dataclass(frozen=True)
class CreatedKey:
    api_key: ApiKey
    raw_key: str


def api_key_create(
    *,
    name: str,
    scope: str = ApiKey.Scope.SCRAPER,
    service: str = "",
    expires_in_days: int | None = None,
    created_by: User | None = None,
) -> CreatedKey:
    """Creates a key; the raw key exists only in the return value."""
    if scope not in ApiKey.Scope.values:
        raise ValueError(f"scope must be one of {', '.join(ApiKey.Scope.values)}")
    expires_at = (
        clock.now() + dt.timedelta(days=expires_in_days) if expires_in_days is not None else None
    )
    while True:
        prefix = "".join(secrets.choice(KEY_PREFIX_ALPHABET) for _ in range(8))
        if not ApiKey.objects.filter(prefix=prefix).exists():
            break
    secret = "".join(secrets.choice(KEY_SECRET_ALPHABET) for _ in range(KEY_SECRET_LENGTH))
    raw_key = f"cak_{prefix}_{secret}"
    api_key = ApiKey.objects.create(
        name=name,
        prefix=prefix,
        key_hash=hash_key(raw_key),
        scope=scope,
        service=service,
        expires_at=expires_at,
        created_by=created_by,
    )
    return CreatedKey(api_key=api_key, raw_key=raw_key)


@transaction.atomic
def api_key_revoke(*, api_key: ApiKey, actor: str) -> ApiKey:
    if api_key.revoked_at is None:
        api_key.revoked_at = clock.now()
        api_key.save(update_fields=["revoked_at"])
        audit_record(actor=actor, action="api_key.revoke", target=str(api_key))
    return api_key


def actor_name(user: AbstractBaseUser | AnonymousUser | Any) -> str:
    return getattr(user, "get_username", lambda: "anonymous")() or "anonymous"


def audit_record(
    *, actor: str, action: str, target: str, details: dict | None = None
) -> AuditEntry:
    return AuditEntry.objects.create(
        at=clock.now(), actor=actor, action=action, target=target, details=details or {}
    )
