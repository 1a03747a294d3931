"""The circuits pages: a Hystrix-like grid, a circuit's detail with its timeline, and the
operators' force / reset buttons."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404, HttpResponse, HttpResponseBadRequest
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from apps.accounts.permissions import operator_required
from apps.accounts.services import actor_name
from apps.circuits.charts import state_band
from apps.circuits.models import Circuit, State
from apps.circuits.selectors import (
    CircuitPanel,
    circuit_events,
    circuit_list,
    circuit_panels,
    circuit_states,
)
from apps.circuits.services import circuit_force
from coreadmin.charts import sparkline
from coreadmin.clock import clock
from coreadmin.errors import ApiError
from coreadmin.http import HtmxHttpRequest

PAGE_SIZE = 48
STATE_ORDER: dict[str, int] = {
    State.OPEN: 0,
    State.FORCED_OPEN: 1,
    State.HALF_OPEN: 2,
    State.FORCED_CLOSED: 3,
    State.CLOSED: 4,
}


def _tile(panel: CircuitPanel) -> dict[str, Any]:
    peak = max(panel.traffic, default=0)
    return {
        "panel": panel,
        "status": panel.status,
        "traffic_spark": sparkline(panel.traffic, width=240, height=40, top=peak),
        "failure_spark": sparkline(panel.failures, width=240, height=40, top=peak),
    }


@login_required
def circuit_grid(request: HtmxHttpRequest) -> HttpResponse:
    q = request.GET.get("q", "").strip()
    state = request.GET.get("state", "")
    circuits = list(circuit_list(q=q)[:5000])
    states, degraded = circuit_states(circuits)
    if state:
        states = [s for s in states if s.state == state]
    states.sort(key=lambda s: (STATE_ORDER.get(s.state, 9), s.circuit.name))
    page = Paginator(states, PAGE_SIZE).get_page(request.GET.get("page"))
    panels, panels_degraded = circuit_panels([s.circuit for s in page])
    context = {
        "page": page,
        "tiles": [_tile(p) for p in panels],
        "q": q,
        "state": state,
        "states": State.choices,
        "degraded": degraded or panels_degraded,
        "now": clock.now(),
    }
    template = "circuits/list.html"
    if request.htmx and not request.htmx.boosted:
        template += "#circuit-grid"
    return render(request, template, context)


def _timeline(circuit: Circuit, current: str) -> dict[str, Any]:
    """The last 24 hours as coloured bands, one per state the circuit was in."""
    end = clock.time()
    start = end - 86_400
    recent = list(
        circuit_events(circuit=circuit)
        .filter(at__gte=clock.now() - dt.timedelta(days=1))
        .order_by("at", "id")[:500]
    )
    segments = []
    cursor, state = start, (recent[0].from_state if recent else current)
    for event in recent:
        at = event.at.timestamp()
        segments.append((cursor, at, state, event.reason))
        cursor, state = at, event.to_state
    segments.append((cursor, end, state, "now"))
    return {"bands": state_band(segments, start=start, end=end, width=960), "width": 960}


def _circuit(name: str) -> Circuit:
    circuit = Circuit.objects.filter(name=name).first()
    if circuit is None:
        raise Http404(f"No circuit named {name!r}.")
    return circuit


def _state_context(circuit: Circuit) -> dict[str, Any]:
    panels, degraded = circuit_panels([circuit])
    return {
        "circuit": circuit,
        **_tile(panels[0]),
        "degraded": degraded,
        "force_choices": [
            (State.FORCED_OPEN, "Force open", "btn-danger"),
            (State.FORCED_CLOSED, "Force closed", ""),
            (State.CLOSED, "Reset to closed", "btn-primary"),
        ],
    }


@login_required
def circuit_detail(request: HtmxHttpRequest, name: str) -> HttpResponse:
    circuit = _circuit(name)
    context = _state_context(circuit)
    template = "circuits/detail.html"
    htmx = request.htmx and not request.htmx.boosted
    if htmx and request.GET.get("part") != "history":
        return render(request, template + "#circuit-state", context)
    context["events"] = Paginator(circuit_events(circuit=circuit), 50).get_page(
        request.GET.get("page")
    )
    context["timeline"] = _timeline(circuit, context["status"].state)
    return render(request, template + ("#circuit-history" if htmx else ""), context)


@require_POST
@operator_required
def circuit_force_view(request: HtmxHttpRequest, name: str) -> HttpResponse:
    circuit = _circuit(name)
    state = request.POST.get("state", "")
    if state not in {State.FORCED_OPEN, State.FORCED_CLOSED, State.CLOSED}:
        return HttpResponseBadRequest("state must be forced_open, forced_closed or closed")
    reason = request.POST.get("reason", "").strip()[:200]
    try:
        circuit_force(name=name, state=state, actor=actor_name(request.user), reason=reason)
    except ApiError as exc:
        messages.error(request, exc.message)
        if request.htmx:
            return HttpResponse(exc.message, status=exc.status)
        return redirect("circuits:detail", name=name)
    if request.htmx:
        response = render(request, "circuits/_state.html", _state_context(circuit))
        response["HX-Trigger"] = "circuit-changed"  # the history below refreshes itself
        return response
    messages.success(request, f"Circuit {name} is now {state.replace('_', ' ')}.")
    return redirect("circuits:detail", name=name)
