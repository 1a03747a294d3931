"""Writes with rules: creating and importing proxies, leasing, outcomes, bans, quarantine,
freezing, health-check results and key rotation."""

from __future__ import annotations

import datetime as dt
import logging
import random
import urllib.parse
import uuid
from dataclasses import dataclass
from typing import Any

import redis
from cachetools import TTLCache
from django.conf import settings
from django.db import DatabaseError, IntegrityError, transaction
from django.db import connection as db_connection
from django.db.models import F, Q, Value
from django.db.models.functions import Coalesce
from django.views.decorators.debug import sensitive_variables

from apps.accounts.auth import Principal
from apps.accounts.services import audit_record
from apps.proxies import pool
from apps.proxies.models import HealthCheck, Lease, PoolPolicy, Proxy, ProxyBan, build_url
from coreadmin import crypto
from coreadmin.clock import clock
from coreadmin.errors import ApiError, Conflict, NotFound, ServiceUnavailable, ValidationFailed

logger = logging.getLogger("apps.proxies")


class NoProxyAvailable(ApiError):
    status = 503
    code = "no_proxy_available"


# --- creating and importing -----------------------------------------------------------


@dataclass(frozen=True)
class ParsedUrl:
    scheme: str
    host: str
    port: int
    username: str
    password: str


@sensitive_variables()
def parse_proxy_url(url: str) -> ParsedUrl:
    """``scheme://[user[:password]@]host:port``; raises ValueError with a reason."""
    parts = urllib.parse.urlsplit(url.strip())
    if parts.scheme not in Proxy.Scheme.values:
        raise ValueError(f"scheme must be one of {', '.join(Proxy.Scheme.values)}")
    try:
        port = parts.port
    except ValueError as exc:
        raise ValueError("port must be a number from 1 to 65535") from exc
    if not parts.hostname or not port:
        raise ValueError("a host and a port are required, like http://host:8080")
    return ParsedUrl(
        parts.scheme,
        parts.hostname,
        port,
        urllib.parse.unquote(parts.username or ""),
        urllib.parse.unquote(parts.password or ""),
    )


def proxy_create(
    *,
    url: str,
    service: str,
    country: str = "",
    tags: list[str] | None = None,
    actor: str = "",
) -> Proxy:
    try:
        parsed = parse_proxy_url(url)
    except ValueError as exc:
        raise ValidationFailed(
            "The proxy URL is not valid.", [{"path": "url", "reason": str(exc)}]
        ) from None
    proxy = Proxy(
        scheme=parsed.scheme,
        host=parsed.host,
        port=parsed.port,
        username=parsed.username,
        service=service,
        country=country.upper(),
        tags=tags or [],
    )
    proxy.set_password(parsed.password)
    try:
        with transaction.atomic():
            proxy.save()
    except IntegrityError:
        raise Conflict("This proxy already exists for this service.", code="proxy_exists") from None
    pool.pool_sync_proxy(proxy=proxy)
    if actor:
        audit_record(actor=actor, action="proxy.create", target=str(proxy))
    return proxy


def proxy_upsert(
    *, url: str, service: str, country: str = "", sync: bool = True
) -> tuple[Proxy, bool]:
    """Creates the proxy or updates its password and country; returns (proxy, created).
    With ``sync=False`` the caller calls ``pool.pool_forget`` once after a bulk import."""
    parsed = parse_proxy_url(url)
    if len(country) > 2:
        raise ValueError("country must be a two-letter code")
    proxy, created = Proxy.objects.get_or_create(
        service=service,
        scheme=parsed.scheme,
        host=parsed.host,
        port=parsed.port,
        username=parsed.username,
        defaults={"country": country.upper()},
    )
    proxy.set_password(parsed.password)
    if country:
        proxy.country = country.upper()
    proxy.save(update_fields=["password_encrypted", "country"])
    if sync:
        pool.pool_sync_proxy(proxy=proxy)
    return proxy, created


# --- operator actions -----------------------------------------------------------------


def proxy_set_status(*, proxy: Proxy, status: str, actor: str) -> Proxy:
    """Freeze (never leased) or unfreeze (active again, failure counts cleared)."""
    if status not in (Proxy.Status.ACTIVE, Proxy.Status.FROZEN):
        raise ValidationFailed(
            "status can be set to active or frozen.",
            [{"path": "status", "reason": "must be active or frozen"}],
        )
    if proxy.status != status:
        previous = proxy.status
        proxy.status = status
        proxy.consecutive_failures = 0
        proxy.quarantine_attempts = 0
        proxy.next_check_at = None
        proxy.save(
            update_fields=["status", "consecutive_failures", "quarantine_attempts", "next_check_at"]
        )
        pool.pool_sync_proxy(proxy=proxy)
        action = "proxy.freeze" if status == Proxy.Status.FROZEN else "proxy.unfreeze"
        audit_record(actor=actor, action=action, target=str(proxy), details={"from": previous})
    return proxy


# --- leasing --------------------------------------------------------------------------


@dataclass(frozen=True)
class Policy:
    strategy: str
    cap: int
    lease_seconds: int
    min_usable_fraction: float


_policies: TTLCache[str, Policy] = TTLCache(maxsize=1024, ttl=5)


def policy_for(service: str) -> Policy:
    """The service's pool policy (cached for 5 s per process)."""
    policy = _policies.get(service)
    if policy is None:
        row = PoolPolicy.objects.filter(service=service).first()
        policy = Policy(
            strategy=row.strategy if row else settings.PROXY_DEFAULT_STRATEGY,
            cap=row.max_leases_per_proxy if row else settings.PROXY_MAX_LEASES_PER_PROXY,
            lease_seconds=(row.lease_seconds if row and row.lease_seconds else None)
            or settings.PROXY_LEASE_SECONDS,
            min_usable_fraction=(
                row.min_usable_fraction
                if row and row.min_usable_fraction is not None
                else settings.PROXY_MIN_USABLE_FRACTION
            ),
        )
        _policies[service] = policy
    return policy


def clear_policy_cache() -> None:
    _policies.clear()


@dataclass(frozen=True)
class Grant:
    lease_id: str
    proxy_id: int
    proxy_url: str
    expires_at: dt.datetime
    slow_down_ms: float


@sensitive_variables("password", "info")
def lease_acquire(*, principal: Principal, service: str, target: str, session: str = "") -> Grant:
    """Leases a usable proxy for ``target``; raises NoProxyAvailable (503) if none is."""
    policy = policy_for(service)
    lease_id = uuid.uuid4().hex
    try:
        picked = pool.pool_pick(
            service=service,
            target=target,
            session=session,
            strategy=policy.strategy,
            cap=policy.cap,
            lease_id=lease_id,
            lease_seconds=policy.lease_seconds,
            min_usable_fraction=policy.min_usable_fraction,
            key_id=principal.key_id,
        )
    except redis.RedisError as exc:
        # Fail closed: without the shared index no lease can respect bans and caps.
        logger.warning("proxy lease refused: Redis unavailable (%s)", type(exc).__name__)
        raise ServiceUnavailable(
            "Leasing is briefly unavailable (shared state unreachable); retry shortly.",
            headers={"Retry-After": "1"},
        ) from None
    if isinstance(picked, pool.NoPick):
        retry_ms = picked.retry_after_ms
        retry = (
            max(1, int(-(-retry_ms // 1000))) if retry_ms else settings.PROXY_RETRY_AFTER_SECONDS
        )
        raise NoProxyAvailable(
            f"No proxy of service {service!r} is usable for {target!r} right now.",
            details={"service": service, "target": target, "retry_after_s": retry},
            headers={"Retry-After": str(retry)},
        )
    if picked.journal_length and picked.journal_length % pool.JOURNAL_FLUSH_EVERY == 0:
        try:
            leases_flush()
        except DatabaseError:  # the lease itself stands; beat's flush retries the rest
            logger.warning("lease journal flush failed", exc_info=True)
    info = picked.info
    password = crypto.decrypt(info["password"]) if info["password"] else ""
    # The lease row reaches Postgres in batches (leases_flush) or with its report: an
    # INSERT and commit per lease would cost more than everything else a lease does.
    expires_at = clock.now() + dt.timedelta(seconds=policy.lease_seconds)
    return Grant(
        lease_id=lease_id,
        proxy_id=picked.proxy_id,
        proxy_url=build_url(info["scheme"], info["host"], info["port"], info["username"], password),
        expires_at=expires_at,
        slow_down_ms=round(picked.slow_down_ms, 1),
    )


# --- outcomes, bans, quarantine -------------------------------------------------------

_HEALTH_VALUE = {"success": 1.0, "failure": 0.0, "timeout": 0.0, "banned": 0.5}


def _ewma(field: str, value: float) -> Any:
    alpha = settings.PROXY_EWMA_ALPHA
    return F(field) * (1 - alpha) + Value(alpha * value)


def proxy_record_outcome(*, proxy_id: int, outcome: str, latency_ms: float | None) -> Proxy:
    """Moves the moving averages and failure count in one UPDATE (safe under concurrency),
    then quarantines the proxy if it failed too many times in a row."""
    now = clock.now()
    failed = outcome in ("failure", "timeout")
    updates: dict[str, Any] = {
        "health_score": _ewma("health_score", _HEALTH_VALUE[outcome]),
        "success_rate": _ewma("success_rate", 1.0 if outcome == "success" else 0.0),
        "last_used_at": now,
    }
    if latency_ms is not None and outcome != "timeout":
        alpha = settings.PROXY_EWMA_ALPHA
        updates["latency_ms"] = Coalesce(F("latency_ms"), Value(float(latency_ms))) * (
            1 - alpha
        ) + Value(alpha * float(latency_ms))
    if failed:
        updates["consecutive_failures"] = F("consecutive_failures") + 1
    elif outcome == "success":
        updates["consecutive_failures"] = Value(0)
    with transaction.atomic():
        # Moving averages are soft state: a crash may lose the last fraction of a second
        # of them, which is worth not waiting for a disk flush on every report.
        with db_connection.cursor() as cursor:
            cursor.execute("SET LOCAL synchronous_commit TO OFF")
        Proxy.objects.filter(pk=proxy_id).update(**updates)
    proxy = Proxy.objects.get(pk=proxy_id)
    if (
        failed
        and proxy.status == Proxy.Status.ACTIVE
        and proxy.consecutive_failures >= settings.PROXY_QUARANTINE_AFTER_FAILURES
    ):
        return proxy_quarantine(proxy=proxy)
    pool.pool_set_weight(service=proxy.service, proxy_id=proxy.id, weight=proxy.health_score)
    return proxy


def recheck_delay_seconds(attempts: int, *, rng: random.Random | None = None) -> float:
    """Randomized exponential backoff: base * 2^attempts, capped, times 0.5..1.5."""
    base = settings.PROXY_RECHECK_BASE_SECONDS * (2 ** min(attempts, 30))
    return min(base, settings.PROXY_RECHECK_MAX_SECONDS) * (rng or random).uniform(0.5, 1.5)


def proxy_quarantine(*, proxy: Proxy) -> Proxy:
    """Out of rotation until a health check passes; the first re-check is scheduled."""
    updated = Proxy.objects.filter(pk=proxy.pk, status=Proxy.Status.ACTIVE).update(
        status=Proxy.Status.QUARANTINED,
        quarantine_attempts=0,
        next_check_at=clock.now() + dt.timedelta(seconds=recheck_delay_seconds(0)),
    )
    proxy.refresh_from_db()
    if updated:
        pool.pool_sync_proxy(proxy=proxy)
        audit_record(
            actor="system",
            action="proxy.quarantine",
            target=str(proxy),
            details={"consecutive_failures": proxy.consecutive_failures},
        )
    return proxy


def ban_cooldown_seconds(count: int) -> int:
    base = settings.PROXY_BAN_BASE_SECONDS * (2 ** min(count - 1, 30))
    return min(base, settings.PROXY_BAN_MAX_SECONDS)


def proxy_ban(*, proxy: Proxy, target: str) -> ProxyBan:
    """Bans the proxy for ``target`` only. A ban while one is active changes nothing; a new
    ban within PROXY_BAN_RESET_SECONDS of the last one's end doubles the cooldown (capped)."""
    now = clock.now()
    with transaction.atomic():
        ban, created = ProxyBan.objects.get_or_create(
            proxy=proxy,
            target=target,
            defaults={
                "count": 1,
                "banned_at": now,
                "banned_until": now + dt.timedelta(seconds=ban_cooldown_seconds(1)),
            },
        )
        if not created:
            ban = ProxyBan.objects.select_for_update().get(pk=ban.pk)
            if ban.banned_until > now:
                return ban
            quiet = (now - ban.banned_until).total_seconds()
            ban.count = ban.count + 1 if quiet < settings.PROXY_BAN_RESET_SECONDS else 1
            ban.banned_at = now
            ban.banned_until = now + dt.timedelta(seconds=ban_cooldown_seconds(ban.count))
            ban.save(update_fields=["count", "banned_at", "banned_until"])
    # After the commit (a Redis ban without its row would only be conservative).
    pool.pool_ban(
        service=proxy.service,
        target=target,
        proxy_id=proxy.pk,
        until_ms=int(ban.banned_until.timestamp() * 1000),
    )
    return ban


def _at(ms: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC)


def _lease_from_record(record: dict[str, Any]) -> Lease:
    return Lease(
        id=record["id"],
        api_key_id=int(record["key"]),
        proxy_id=record["proxy"],
        service=record["service"],
        target=record["target"],
        session=record["session"],
        leased_at=_at(record["at"]),
        expires_at=_at(record["until_ms"]),
        outcome=record.get("outcome", ""),
        latency_ms=record.get("latency_ms"),
        status_code=record.get("status_code"),
        reported_at=_at(record["reported_ms"]) if record.get("reported_ms") else None,
    )


def leases_flush(*, limit: int = 5000) -> int:
    """Writes journalled lease records (leases, then reports) to Postgres in two INSERTs.
    Beat runs it every few seconds; returns how many records it took."""
    records = pool.journal_take(limit)
    leased = {r["id"]: r for r in records if not r.get("outcome")}
    reported = {r["id"]: r for r in records if r.get("outcome")}
    Lease.objects.bulk_create(
        [_lease_from_record(r) for r in leased.values()], ignore_conflicts=True, batch_size=1000
    )
    Lease.objects.bulk_create(
        [_lease_from_record(r) for r in reported.values()],
        update_conflicts=True,
        unique_fields=["id"],
        update_fields=["outcome", "latency_ms", "status_code", "reported_at"],
        batch_size=1000,
    )
    return len(records)


def lease_report(
    *,
    principal: Principal,
    lease_id: str,
    outcome: str,
    latency_ms: float | None = None,
    status_code: int | None = None,
) -> Proxy:
    """Records a lease's outcome (once) and frees its slot; another key's lease is 404.
    The outcome row is journalled like the lease (no commit here beyond the proxy's)."""
    record = pool.lease_record(lease_id)
    if record is not None and int(record["key"]) != principal.key_id:
        raise NotFound(f"No lease {lease_id!r} for this key.")
    if record is None:  # gone from Redis (reported late): the row the batch writer stored
        row = Lease.objects.filter(pk=lease_id, api_key_id=principal.key_id).first()
        if row is None:
            raise NotFound(f"No lease {lease_id!r} for this key.")
        if row.outcome:
            raise Conflict("This lease has already been reported.", code="lease_already_reported")
        record = {"id": row.pk, "proxy": row.proxy_id, "target": row.target}
    if not pool.lease_mark_reported(lease_id):
        raise Conflict("This lease has already been reported.", code="lease_already_reported")
    now_ms = clock.ms()
    report = {"outcome": outcome, "latency_ms": latency_ms, "status_code": status_code}
    if "key" in record:
        pool.pool_release(
            proxy_id=record["proxy"],
            lease_id=lease_id,
            journal={**record, **report, "reported_ms": now_ms},
        )
    else:
        Lease.objects.filter(pk=lease_id).update(**report, reported_at=_at(now_ms))
        pool.pool_release(proxy_id=record["proxy"], lease_id=lease_id)
    if outcome == "banned":
        proxy_ban(proxy=Proxy.objects.get(pk=record["proxy"]), target=record["target"])
    return proxy_record_outcome(proxy_id=record["proxy"], outcome=outcome, latency_ms=latency_ms)


# --- health checks --------------------------------------------------------------------


def health_check_record(
    *,
    proxy: Proxy,
    ok: bool,
    latency_ms: float | None,
    status_code: int | None = None,
    error: str = "",
) -> Proxy:
    """Stores a check in the history and applies it: a pass brings a quarantined proxy
    back; a failure re-schedules its re-check with a longer randomized backoff."""
    now = clock.now()
    HealthCheck.objects.create(
        proxy=proxy,
        at=now,
        ok=ok,
        latency_ms=latency_ms,
        status_code=status_code,
        error=error[:255],
    )
    proxy = proxy_record_outcome(
        proxy_id=proxy.pk, outcome="success" if ok else "failure", latency_ms=latency_ms
    )
    if proxy.status == Proxy.Status.QUARANTINED:
        if ok:
            proxy.status = Proxy.Status.ACTIVE
            proxy.consecutive_failures = 0
            proxy.quarantine_attempts = 0
            next_check = now + dt.timedelta(seconds=settings.PROXY_CHECK_INTERVAL_SECONDS)
            audit_record(actor="system", action="proxy.recover", target=str(proxy))
        else:
            proxy.quarantine_attempts += 1
            next_check = now + dt.timedelta(
                seconds=recheck_delay_seconds(proxy.quarantine_attempts)
            )
    else:
        next_check = now + dt.timedelta(seconds=settings.PROXY_CHECK_INTERVAL_SECONDS)
    proxy.last_checked_at = now
    proxy.next_check_at = next_check
    proxy.save(
        update_fields=[
            "status",
            "consecutive_failures",
            "quarantine_attempts",
            "last_checked_at",
            "next_check_at",
        ]
    )
    pool.pool_sync_proxy(proxy=proxy)
    return proxy


def health_history_prune(*, days: int | None = None) -> int:
    cutoff = clock.now() - dt.timedelta(days=days or settings.PROXY_CHECK_HISTORY_DAYS)
    deleted, _ = HealthCheck.objects.filter(at__lt=cutoff).delete()
    Lease.objects.filter(leased_at__lt=cutoff).delete()
    return deleted


# --- key rotation ---------------------------------------------------------------------


def proxies_reencrypt() -> int:
    """Re-encrypts every proxy password under the first ENCRYPTION_KEYS key."""
    changed = 0
    services: set[str] = set()
    for proxy in Proxy.objects.exclude(password_encrypted="").iterator(chunk_size=500):
        proxy.password_encrypted = crypto.reencrypt(proxy.password_encrypted)
        proxy.save(update_fields=["password_encrypted"])
        services.add(proxy.service)
        changed += 1
    for service in services:
        pool.pool_forget(service=service)
    return changed


def proxies_check(*, proxies: list[Proxy], config: Any = None) -> dict[int, Any]:
    """Runs health checks through each proxy (see checks.py) and records every result."""
    from apps.proxies.checks import CheckConfig, check_proxies

    config = config or CheckConfig.from_settings()
    results = check_proxies(proxies, config)
    for proxy in proxies:
        result = results[proxy.pk]
        health_check_record(
            proxy=proxy,
            ok=result.ok,
            latency_ms=result.latency_ms,
            status_code=result.status_code,
            error=result.error,
        )
    return results


@transaction.atomic
def proxies_claim_due_checks(*, limit: int | None = None) -> list[Proxy]:
    """Active and quarantined proxies whose next check time has come (frozen ones wait),
    claimed: their next check moves PROXY_CHECK_CLAIM_SECONDS ahead so an overlapping
    run (a slow batch, two beat ticks) does not check them twice. Recording a result sets
    the real next check time."""
    now = clock.now()
    due = list(
        Proxy.objects.select_for_update(skip_locked=True)
        .exclude(status=Proxy.Status.FROZEN)
        .filter(Q(next_check_at__isnull=True) | Q(next_check_at__lte=now))
        .order_by(F("next_check_at").asc(nulls_first=True))[
            : limit or settings.PROXY_CHECK_BATCH_SIZE
        ]
    )
    claimed_until = now + dt.timedelta(seconds=settings.PROXY_CHECK_CLAIM_SECONDS)
    Proxy.objects.filter(pk__in=[p.pk for p in due]).update(next_check_at=claimed_until)
    return due
