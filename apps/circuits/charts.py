"""Server-rendered SVG charts of circuits and rate limits: per-minute series, a state band
and stacked bars (sparklines: coreadmin.charts).

Pure functions returning path strings / rectangles; templates draw the <svg>.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


def minute_series(stats: dict[bytes, bytes], minute_now: int, kind: str) -> list[int]:
    """The last 60 minutes of one counter from a script's per-minute counts hash (fields
    ``<kind><epoch minute>``), oldest first."""
    return [
        int(stats.get(f"{kind}{m}".encode(), 0)) for m in range(minute_now - 59, minute_now + 1)
    ]


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


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    kind: str
    value: int


def stacked_bars(
    series: Sequence[tuple[str, Sequence[int]]], *, width: int = 240, height: int = 40
) -> list[Bar]:
    """One column per position, the series stacked bottom-up in the order given."""
    n = max((len(values) for _kind, values in series), default=0)
    if n == 0:
        return []
    totals = [sum(values[i] for _kind, values in series) for i in range(n)]
    top = max(max(totals), 1)
    step = width / n
    bars = []
    for i in range(n):
        base = float(height)
        for kind, values in series:
            if values[i] <= 0:
                continue
            h = values[i] / top * (height - 1)
            base -= h
            bars.append(
                Bar(
                    round(i * step, 2),
                    round(base, 2),
                    round(step * 0.85, 2),
                    round(h, 2),
                    kind,
                    values[i],
                )
            )
    return bars
