"""Server-rendered SVG for the dataset page: a sparkline of records written per minute."""

from __future__ import annotations

from collections.abc import Sequence


def sparkline(values: Sequence[float], *, width: int = 320, height: int = 48) -> dict[str, str]:
    """SVG path data ("d" attributes) for a line and the area under it."""
    if not values:
        return {"line": "", "area": ""}
    top = max(values) or 1
    step = width / max(1, len(values) - 1)
    points = [
        (round(i * step, 1), round(height - 2 - (v / top) * (height - 4), 1))
        for i, v in enumerate(values)
    ]
    line = "M" + " L".join(f"{x},{y}" for x, y in points)
    area = f"{line} L{points[-1][0]},{height} L0,{height} Z"
    return {"line": line, "area": area}
