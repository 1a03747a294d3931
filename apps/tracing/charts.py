"""The thread waterfall's geometry: one bar per span, indented by depth, on a shared time
axis. Pure arithmetic; templates/tracing/thread.html draws it as SVG."""

from __future__ import annotations

from dataclasses import dataclass

from apps.tracing.selectors import Thread

LABEL_W = 300
BAR_W = 640
ROW_H = 22
AXIS_H = 24


@dataclass(frozen=True)
class Bar:
    y: float
    x: float
    width: float
    label_x: float
    rect_y: float
    text_y: float
    dur_x: float
    stage: str
    name: str
    service: str
    status: str
    offset_ms: float
    duration_ms: float
    depth: int


@dataclass(frozen=True)
class Waterfall:
    bars: list[Bar]
    ticks: list[tuple[float, str]]
    width: int
    height: int
    label_w: int
    bar_w: int


def waterfall(thread: Thread) -> Waterfall:
    total = thread.total_ms or 1.0
    bars = []
    for row, span in enumerate(thread.spans):
        x = round(LABEL_W + span.offset_ms / total * BAR_W, 2)
        width = round(max(span.duration_ms / total * BAR_W, 1.0), 2)
        y = AXIS_H + row * ROW_H
        bars.append(
            Bar(
                y=y,
                x=x,
                width=width,
                label_x=8 + span.depth * 14,
                rect_y=y + 4,
                text_y=y + 15,
                dur_x=round(x + width + 4, 2),
                stage=span.stage,
                name=span.name,
                service=span.service,
                status=span.status,
                offset_ms=span.offset_ms,
                duration_ms=span.duration_ms,
                depth=span.depth,
            )
        )
    ticks = [(LABEL_W + f * BAR_W, f"{total * f:.1f} ms") for f in (0, 0.25, 0.5, 0.75, 1.0)]
    height = AXIS_H + max(len(bars), 1) * ROW_H + 4
    return Waterfall(bars, ticks, LABEL_W + BAR_W + 70, height, LABEL_W, BAR_W)
