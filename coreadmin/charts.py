"""Server-rendered SVG chart geometry (no JavaScript): templates draw the paths.

``sparkline(values)`` scales a series (None = no data, which breaks the line) into a
``width`` x ``height`` box and returns the line and area paths and the y scale's top.
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
    top: float
    points: int

    @property
    def empty(self) -> bool:
        return self.points == 0


def sparkline(
    values: Sequence[float | None],
    *,
    width: int = 120,
    height: int = 28,
    top: float | None = None,
) -> Spark:
    present = [v for v in values if v is not None]
    scale_top = top if top is not None else (max(present) if present else 0.0)
    scale_top = scale_top or 1.0
    n = len(values)
    step = width / max(n - 1, 1)
    line: list[str] = []
    area: list[str] = []
    run: list[tuple[float, float]] = []

    def close_run() -> None:
        if not run:
            return
        lone = len(run) == 1
        if lone:  # a lone point: a short dash around it, so it is visible
            x, y = run[0]
            run[:] = [(max(x - 1.5, 0.0), y), (min(x + 1.5, float(width)), y)]
        line.append("M" + " L".join(f"{x:.1f},{y:.1f}" for x, y in run))
        if not lone:
            area.append(
                f"M{run[0][0]:.1f},{height} L"
                + " L".join(f"{x:.1f},{y:.1f}" for x, y in run)
                + f" L{run[-1][0]:.1f},{height} Z"
            )
        run.clear()

    for i, value in enumerate(values):
        if value is None:
            close_run()
            continue
        y = height - 1 - (min(value, scale_top) / scale_top) * (height - 2)
        run.append((i * step, y))
    close_run()
    return Spark(" ".join(line), " ".join(area), width, height, scale_top, len(present))
