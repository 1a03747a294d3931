"""Circuit reads shared by the API and the dashboard."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from django.db.models import QuerySet

from apps.circuits.charts import minute_series
from apps.circuits.models import Circuit, CircuitEvent, State
from apps.circuits.services import REDIS_ERRORS, CircuitStatus, redis_keys
from coreadmin.clock import clock
from coreadmin.redis import connection

STATE_FIELDS = ["state", "failures", "opened_at", "changed_at"]
OPEN_STATES = {State.OPEN, State.HALF_OPEN, State.FORCED_OPEN}


def _ms(value: bytes | None) -> dt.datetime | None:
    if not value or float(value) <= 0:
        return None
    return dt.datetime.fromtimestamp(float(value) / 1000, tz=dt.UTC)


def _from_hash(circuit: Circuit, values: list) -> CircuitStatus:
    if values[0] is None:  # never used, or expired while idle: what the script would build
        return CircuitStatus(circuit, circuit.forced_state or State.CLOSED, 0, None, None)
    state = values[0].decode()
    return CircuitStatus(
        circuit=circuit,
        state=state,
        failure_count=int(values[1] or 0),
        opened_at=_ms(values[2]) if state in OPEN_STATES else None,
        changed_at=_ms(values[3]),
    )


def circuit_status(*, circuit: Circuit) -> CircuitStatus:
    try:
        values: list = connection().hmget(redis_keys(circuit.name)[0], STATE_FIELDS)  # type: ignore[assignment]
    except REDIS_ERRORS:
        return CircuitStatus(
            circuit, circuit.forced_state or State.CLOSED, 0, None, None, degraded=True
        )
    return _from_hash(circuit, values)


def circuit_list(*, q: str = "") -> QuerySet[Circuit]:
    circuits = Circuit.objects.all().order_by("name")
    if q:
        circuits = circuits.filter(name__icontains=q)
    return circuits


@dataclass
class CircuitPanel:
    """One dashboard tile: the status plus traffic of the last hour, minute by minute."""

    status: CircuitStatus
    allowed: list[int] = field(default_factory=list)
    denied: list[int] = field(default_factory=list)
    successes: list[int] = field(default_factory=list)
    failures: list[int] = field(default_factory=list)
    slow: list[int] = field(default_factory=list)

    @property
    def calls(self) -> int:
        return sum(self.successes) + sum(self.failures)

    @property
    def error_rate(self) -> float | None:
        return 100.0 * sum(self.failures) / self.calls if self.calls else None

    @property
    def traffic(self) -> list[int]:
        return [a + d for a, d in zip(self.allowed, self.denied, strict=True)]

    @property
    def denied_total(self) -> int:
        return sum(self.denied)

    @property
    def this_minute(self) -> int:
        return self.traffic[-1] if self.allowed else 0


def circuit_states(circuits: list[Circuit]) -> tuple[list[CircuitStatus], bool]:
    """The live state of each circuit in one Redis round trip. Returns (states, degraded)."""
    try:
        pipe = connection().pipeline(transaction=False)
        for circuit in circuits:
            pipe.hmget(redis_keys(circuit.name)[0], STATE_FIELDS)
        replies = pipe.execute()
    except REDIS_ERRORS:
        return [
            CircuitStatus(c, c.forced_state or State.CLOSED, 0, None, None, degraded=True)
            for c in circuits
        ], True
    return [_from_hash(c, values) for c, values in zip(circuits, replies, strict=True)], False


def circuit_panels(circuits: list[Circuit]) -> tuple[list[CircuitPanel], bool]:
    """Status and last-hour series for each circuit: one Redis round trip for all of
    them. Returns (panels, degraded)."""
    minute_now = clock.ms() // 60000
    try:
        pipe = connection().pipeline(transaction=False)
        for circuit in circuits:
            keys = redis_keys(circuit.name)
            pipe.hmget(keys[0], STATE_FIELDS)
            pipe.hgetall(keys[3])
        replies = pipe.execute()
    except REDIS_ERRORS:
        return [CircuitPanel(circuit_status(circuit=c)) for c in circuits], True
    panels = []
    for i, circuit in enumerate(circuits):
        stats = replies[2 * i + 1]
        panels.append(
            CircuitPanel(
                status=_from_hash(circuit, replies[2 * i]),
                allowed=minute_series(stats, minute_now, "a"),
                denied=minute_series(stats, minute_now, "d"),
                successes=minute_series(stats, minute_now, "s"),
                failures=minute_series(stats, minute_now, "f"),
                slow=minute_series(stats, minute_now, "w"),
            )
        )
    return panels, False


def circuit_events(*, circuit: Circuit) -> QuerySet[CircuitEvent]:
    return CircuitEvent.objects.filter(circuit=circuit).order_by("-at", "-id")
