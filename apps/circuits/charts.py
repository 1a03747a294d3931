"""Server-rendered SVG charts: sparklines (a line and the area under it) and a state band.

Pure functions returning path strings / rectangles; templates draw the <svg>.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Spark:
    line: str
    area: str
    width: int
    height: int
    peak: float


def sparkline(
    values: Sequence[float], *, width: int = 240, height: int = 40, peak: float | None = None
) -> Spark:
    """Paths for ``values`` spread over ``width``; the y scale tops out at ``peak`` (default:
    the largest value), so two series can share one scale."""
    top = max(peak if peak is not None else max(values, default=0), 1)
    n = len(values)
    if n == 0:
        return Spark("", "", width, height, top)
    step = width / max(n - 1, 1)
    points = [
        (round(i * step, 1), round(height - 1 - (v / top) * (height - 2), 1))
        for i, v in enumerate(values)
    ]
    line = "M" + " L".join(f"{x},{y}" for x, y in points)
    area = f"{line} L{points[-1][0]},{height} L0,{height} Z"
    return Spark(line, area, width, height, top)


@dataclass(frozen=True)
class Band:
    x: float
    width: float
    state: str
    label: str


def state_band(
    segments: Sequence[tuple[float, float, str, str]], *, start: float, end: float, width: int
) -> list[Band]:
    """Rectangles for (from_s, to_s, state, label) segments clipped to [start, end]."""
    span = max(end - start, 1e-9)
    bands = []
    for seg_from, seg_to, state, label in segments:
        a, b = max(seg_from, start), min(seg_to, end)
        if b <= a:
            continue
        bands.append(
            Band(
                round((a - start) / span * width, 2),
                round(max((b - a) / span * width, 0.5), 2),
                state,
                label,
            )
        )
    return bands
