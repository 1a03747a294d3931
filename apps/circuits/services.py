"""Circuit writes: acquire, record, force, configure, and the event outbox flush.

Each state change is one call of the Lua script (apps/circuits/lua.py); transitions it
reports are written to Postgres here, once (unique per circuit and event id). When Redis
does not answer, acquire fails open and says ``degraded`` (see docs/circuits.md).
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import uuid
from dataclasses import dataclass
from typing import Any

import orjson
from django.conf import settings
from django.db import DatabaseError, IntegrityError, transaction

from apps.accounts.services import audit_record
from apps.circuits.lua import CIRCUIT_SCRIPT
from apps.circuits.models import Circuit, CircuitEvent, State
from coreadmin.clock import clock
from coreadmin.errors import ServiceUnavailable
from coreadmin.failopen import REDIS_ERRORS, RedisBackoff
from coreadmin.redis import LuaScript, connection, key

logger = logging.getLogger("coreadmin.circuits")
script = LuaScript(CIRCUIT_SCRIPT)
backoff = RedisBackoff("circuits")
CONFIG_FIELDS = (
    "failure_threshold",
    "recovery_timeout_ms",
    "half_open_max_calls",
    "success_threshold",
    "failure_rate_threshold",
    "slow_call_rate_threshold",
    "slow_call_duration_ms",
    "minimum_calls",
    "sliding_window_ms",
)
OUTBOX = ("circuits", "outbox")


def redis_keys(name: str) -> list[str]:
    return [
        key("circuit", name),
        key("circuit", name, "window"),
        key("circuit", name, "probes"),
        key("circuit", name, "stats"),
        key(*OUTBOX),
    ]


@dataclass(frozen=True)
class CircuitStatus:
    circuit: Circuit
    state: str
    failure_count: int
    opened_at: dt.datetime | None
    changed_at: dt.datetime | None
    degraded: bool = False

    @property
    def label(self) -> str:
        return self.state.replace("_", " ")


@dataclass(frozen=True)
class Acquired:
    allowed: bool
    state: str
    retry_after_ms: float
    degraded: bool
    probe_id: str | None


# --- configuration, cached per process ---------------------------------------------------

_cache: dict[str, tuple[Circuit, float]] = {}
_cache_lock = threading.Lock()


def clear_config_cache() -> None:
    with _cache_lock:
        _cache.clear()


def _remember(circuit: Circuit) -> Circuit:
    with _cache_lock:
        _cache[circuit.name] = (circuit, clock.time())
    return circuit


def circuit_get_or_create(*, name: str, fresh: bool = False) -> Circuit:
    """The circuit's configuration, created with the settings' defaults on first use;
    cached per process for CIRCUIT_CONFIG_CACHE_SECONDS unless ``fresh``."""
    cached = None if fresh else _cache.get(name)
    # (a clock moved backwards, as tests do, also means "stale")
    if cached is not None and 0 <= clock.time() - cached[1] < settings.CIRCUIT_CONFIG_CACHE_SECONDS:
        return cached[0]
    circuit = Circuit.objects.filter(name=name).first()
    if circuit is None:
        try:
            with transaction.atomic():
                circuit = Circuit.objects.create(name=name)
        except IntegrityError:  # another caller created it first
            circuit = Circuit.objects.get(name=name)
    return _remember(circuit)


# --- the script ---------------------------------------------------------------------------


def _ms_to_dt(value: Any) -> dt.datetime | None:
    ms = float(value)
    return dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC) if ms > 0 else None


def script_args(
    circuit: Circuit,
    op: str,
    now_ms: int,
    arg1: str = "",
    arg2: str = "",
    token: str = "",
    initial: str | None = None,
) -> list[Any]:
    """ARGV for the circuit script (see apps/circuits/lua.py); benchmarks use it too."""
    window_ms = circuit.sliding_window_ms
    nbuckets = max(1, min(60, round(window_ms / 1000)))
    return [
        op,
        now_ms,
        circuit.failure_threshold,
        circuit.recovery_timeout_ms,
        circuit.half_open_max_calls,
        circuit.success_threshold,
        circuit.failure_rate_threshold,
        circuit.slow_call_rate_threshold,
        circuit.slow_call_duration_ms,
        circuit.minimum_calls,
        nbuckets,
        window_ms / nbuckets,
        settings.CIRCUIT_PROBE_TIMEOUT_MS,
        settings.CIRCUIT_STATE_TTL_SECONDS * 1000,
        initial or circuit.forced_state or State.CLOSED,
        circuit.name,
        arg1,
        arg2,
        token,
    ]


def _run(
    circuit: Circuit,
    op: str,
    arg1: str = "",
    arg2: str = "",
    token: str = "",
    initial: str | None = None,
) -> list:
    args = script_args(circuit, op, clock.ms(), arg1, arg2, token, initial)
    result = script(redis_keys(circuit.name), args)
    backoff.succeeded()
    events = [orjson.loads(raw) for raw in result[6:]]
    if events:
        _store_events(circuit, events, [bytes(raw) for raw in result[6:]])
    return result


def _status(circuit: Circuit, result: list) -> CircuitStatus:
    state = result[0].decode() if isinstance(result[0], bytes) else str(result[0])
    opened = (
        _ms_to_dt(result[4]) if state in {State.OPEN, State.HALF_OPEN, State.FORCED_OPEN} else None
    )
    return CircuitStatus(
        circuit=circuit,
        state=state,
        failure_count=int(result[3]),
        opened_at=opened,
        changed_at=_ms_to_dt(result[5]),
    )


def _store_events(circuit: Circuit, events: list[dict], raws: list[Any]) -> None:
    rows = [
        CircuitEvent(
            circuit=circuit,
            event_id=event["id"],
            from_state=event["from_state"],
            to_state=event["to_state"],
            reason=event["reason"][:255],
            at=_ms_to_dt(event["at"]) or clock.now(),
        )
        for event in events
    ]
    try:
        with transaction.atomic():
            CircuitEvent.objects.bulk_create(rows, ignore_conflicts=True)
    except DatabaseError:
        logger.exception("circuit events kept in the outbox", extra={"circuit": circuit.name})
        return
    try:
        pipe = connection().pipeline(transaction=False)
        for raw in raws:
            pipe.lrem(key(*OUTBOX), 1, raw)
        pipe.execute()
    except REDIS_ERRORS:
        pass  # the flush task removes them later; the rows are written already


def _degraded_state(circuit: Circuit) -> str:
    return circuit.forced_state or State.CLOSED


# --- the operations -----------------------------------------------------------------------


def circuit_acquire(*, name: str) -> Acquired:
    circuit = circuit_get_or_create(name=name)
    token = uuid.uuid4().hex
    if backoff.should_try():
        try:
            result = _run(circuit, "acquire", token=token)
        except REDIS_ERRORS:
            backoff.failed()
        else:
            allowed = bool(int(result[1]))
            state = _status(circuit, result).state
            return Acquired(
                allowed=allowed,
                state=state,
                retry_after_ms=float(result[2]),
                degraded=False,
                probe_id=token if allowed and state == State.HALF_OPEN else None,
            )
    # Redis is unreachable: fail open (a forced_open circuit, known from Postgres, stays
    # shut), say so and count it.
    backoff.count_degraded()
    forced_open = circuit.forced_state == State.FORCED_OPEN
    return Acquired(
        allowed=not forced_open,
        state=_degraded_state(circuit),
        retry_after_ms=circuit.recovery_timeout_ms if forced_open else 0.0,
        degraded=True,
        probe_id=None,
    )


def circuit_record(
    *, name: str, outcome: str, duration_ms: float = 0.0, probe_id: str = ""
) -> CircuitStatus:
    circuit = circuit_get_or_create(name=name)
    if backoff.should_try():
        try:
            result = _run(circuit, "record", outcome, repr(float(duration_ms)), probe_id)
        except REDIS_ERRORS:
            backoff.failed()
        else:
            return _status(circuit, result)
    backoff.count_degraded()
    return CircuitStatus(
        circuit=circuit,
        state=_degraded_state(circuit),
        failure_count=0,
        opened_at=None,
        changed_at=None,
        degraded=True,
    )


def circuit_force(*, name: str, state: str, actor: str, reason: str = "") -> CircuitStatus:
    """Operators force a circuit open or closed for the whole fleet, or reset it to closed
    (which also clears a forced state). Refused (503) when Redis does not answer, so
    Postgres and Redis never disagree about an operator's decision."""
    if state not in {State.FORCED_OPEN, State.FORCED_CLOSED, State.CLOSED}:
        raise ValueError(f"cannot force a circuit to {state!r}")
    circuit = circuit_get_or_create(name=name, fresh=True)
    before = circuit.forced_state or State.CLOSED
    circuit.forced_state = "" if state == State.CLOSED else state
    why = f"{'reset' if state == State.CLOSED else 'forced'} by {actor}" + (
        f": {reason}" if reason else ""
    )
    try:
        result = _run(circuit, "force", state, why, initial=before)
    except REDIS_ERRORS as exc:
        backoff.failed()
        raise ServiceUnavailable(
            "Redis did not answer, so the circuit was not changed; try again.",
            code="redis_unavailable",
        ) from exc
    with transaction.atomic():
        circuit.save(update_fields=["forced_state", "updated_at"])
        audit_record(
            actor=actor,
            action="circuit.force" if state != State.CLOSED else "circuit.reset",
            target=f"circuit {name}",
            details={"state": state, "reason": reason},
        )
    _remember(circuit)
    return _status(circuit, result)


def circuit_configure(*, name: str, values: dict[str, Any], actor: str) -> CircuitStatus:
    circuit = circuit_get_or_create(name=name, fresh=True)
    changed = {f: v for f, v in values.items() if f in CONFIG_FIELDS and v is not None}
    for field, value in changed.items():
        setattr(circuit, field, value)
    circuit.full_clean()
    with transaction.atomic():
        circuit.save()
        audit_record(
            actor=actor, action="circuit.configure", target=f"circuit {name}", details=changed
        )
    _remember(circuit)
    from apps.circuits.selectors import circuit_status

    return circuit_status(circuit=circuit)


def circuit_events_flush() -> int:
    """Writes transitions left in the outbox by a caller that died between the script and
    Postgres; returns how many entries it handled. Idempotent."""
    client = connection()
    raws: list[Any] = client.lrange(key(*OUTBOX), 0, 999)  # type: ignore[assignment]
    if not raws:
        return 0
    by_name: dict[str, list[tuple[dict, Any]]] = {}
    for raw in raws:
        event = orjson.loads(raw)
        by_name.setdefault(event["circuit"], []).append((event, raw))
    circuits = {c.name: c for c in Circuit.objects.filter(name__in=list(by_name))}
    for name, items in by_name.items():
        circuit = circuits.get(name)
        if circuit is None:  # deleted since: nothing to record against
            pipe = client.pipeline(transaction=False)
            for _event, raw in items:
                pipe.lrem(key(*OUTBOX), 1, raw)
            pipe.execute()
            continue
        _store_events(circuit, [e for e, _ in items], [r for _, r in items])
    return len(raws)
