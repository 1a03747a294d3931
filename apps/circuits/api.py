"""Circuit breakers for scrapers (API.md, "Circuit breakers")."""

from __future__ import annotations

from typing import Any

import orjson
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import HttpRequest, HttpResponse
from ninja import Path, Query, Router

from apps.accounts.auth import admin_auth
from apps.circuits.models import NAME_PATTERN, Circuit
from apps.circuits.schemas import (
    AcquireOut,
    CircuitConfigIn,
    CircuitListOut,
    CircuitOut,
    EventListOut,
    ForceIn,
    RecordIn,
)
from apps.circuits.selectors import (
    circuit_events,
    circuit_list,
    circuit_states,
    circuit_status,
)
from apps.circuits.services import (
    CONFIG_FIELDS,
    CircuitStatus,
    circuit_acquire,
    circuit_configure,
    circuit_force,
    circuit_record,
)
from coreadmin.errors import NotFound, ValidationFailed
from coreadmin.http import ApiRequest

router = Router(tags=["circuits"])
CircuitName = Path(..., pattern=NAME_PATTERN, max_length=100)


def _out(status: CircuitStatus) -> dict[str, Any]:
    circuit = status.circuit
    return {
        "name": circuit.name,
        "state": status.state,
        "failure_count": status.failure_count,
        "opened_at": status.opened_at,
        "changed_at": status.changed_at,
        "degraded": status.degraded,
        **{f: getattr(circuit, f) for f in CONFIG_FIELDS},
    }


def _existing(name: str) -> Circuit:
    circuit = Circuit.objects.filter(name=name).first()
    if circuit is None:
        raise NotFound(f"There is no circuit named {name!r}.")
    return circuit


@router.get("", response=CircuitListOut)
def list_circuits(request: HttpRequest, q: str = "", limit: int = Query(100, ge=1, le=500)):
    circuits = list(circuit_list(q=q)[:limit])
    states, _degraded = circuit_states(circuits)  # one Redis round trip for all
    return {"items": [_out(status) for status in states], "count": len(circuits)}


@router.get("/{name}", response=CircuitOut)
def get_circuit(request: HttpRequest, name: str = CircuitName):
    return _out(circuit_status(circuit=_existing(name)))


@router.put("/{name}", response=CircuitOut, auth=admin_auth)
def put_circuit(request: ApiRequest, payload: CircuitConfigIn, name: str = CircuitName):
    try:
        status = circuit_configure(
            name=name, values=payload.dict(), actor=f"key:{request.auth.name}"
        )
    except DjangoValidationError as exc:
        fields = [{"path": f, "reason": " ".join(m)} for f, m in exc.message_dict.items()]
        raise ValidationFailed("The circuit configuration is not valid.", fields) from exc
    return _out(status)


@router.post("/{name}/acquire", response=AcquireOut)
def acquire(request: HttpRequest, name: str = CircuitName):
    """The hot path: Acquired has exactly AcquireOut's fields, so it is serialised directly
    (schemathesis checks the answers against the schema)."""
    return HttpResponse(orjson.dumps(circuit_acquire(name=name)), content_type="application/json")


@router.post("/{name}/record", response=CircuitOut)
def record(request: HttpRequest, payload: RecordIn, name: str = CircuitName):
    return _out(
        circuit_record(
            name=name,
            outcome=payload.outcome,
            duration_ms=payload.duration_ms,
            probe_id=payload.probe_id,
        )
    )


@router.post("/{name}/force", response=CircuitOut, auth=admin_auth)
def force(request: ApiRequest, payload: ForceIn, name: str = CircuitName):
    return _out(
        circuit_force(
            name=name,
            state=payload.state,
            actor=f"key:{request.auth.name}",
            reason=payload.reason,
        )
    )


@router.get("/{name}/events", response=EventListOut)
def events(
    request: HttpRequest,
    name: str = CircuitName,
    limit: int = Query(100, ge=1, le=1000),
    offset: int = Query(0, ge=0),
):
    events = circuit_events(circuit=_existing(name))
    return {"items": list(events[offset : offset + limit]), "count": events.count()}
