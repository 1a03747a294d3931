from __future__ import annotations

from typing import Any

from apps.circuits.models import State
from apps.circuits.selectors import circuit_list, circuit_states
from coreadmin.panels import NavItem, Tile


def open_circuits_tile() -> dict[str, Any]:
    circuits = list(circuit_list()[:5000])
    states, degraded = circuit_states(circuits)
    open_ = [s for s in states if s.state in {State.OPEN, State.FORCED_OPEN}]
    half = [s for s in states if s.state == State.HALF_OPEN]
    return {
        "open_count": len(open_),
        "half_open_count": len(half),
        "total": len(states),
        "open_names": [s.circuit.name for s in sorted(open_, key=lambda s: s.circuit.name)][:6],
        "degraded": degraded,
    }


NAV = [NavItem("Circuits", "circuits:list", order=30)]
TILES = [
    Tile(
        "open-circuits",
        "Open circuits",
        "circuits/_tile.html",
        open_circuits_tile,
        url_name="circuits:list",
        order=30,
    )
]
