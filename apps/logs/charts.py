"""Server-rendered SVG sparkline paths (no JavaScript, no chart library)."""

from __future__ import annotations


def sparkline(series: list[float], *, width: int = 280, height: int = 40) -> dict[str, str]:
    """The ``d`` attributes of a line and of the area under it, scaled to the box."""
    if not series:
        return {"line": "", "area": "", "width": str(width), "height": str(height)}
    top = max(series) or 1
    step = width / max(1, len(series) - 1)
    points = [
        (round(i * step, 1), round(height - 2 - (value / top) * (height - 4), 1))
        for i, value in enumerate(series)
    ]
    line = "M" + " L".join(f"{x},{y}" for x, y in points)
    area = f"{line} L{points[-1][0]},{height} L0,{height} Z"
    return {"line": line, "area": area, "width": str(width), "height": str(height)}
