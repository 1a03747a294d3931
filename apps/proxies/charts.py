"""Server-rendered SVG line charts for the proxy detail page (no JavaScript)."""

from __future__ import annotations

from django.utils.html import format_html
from django.utils.safestring import SafeString, mark_safe


def line_chart(
    values: list[float | None],
    *,
    width: int = 520,
    height: int = 90,
    top: float | None = None,
    label: str = "",
    unit: str = "",
) -> SafeString:
    """A polyline of ``values`` (None leaves a gap), scaled to ``top`` or the maximum."""
    present = [v for v in values if v is not None]
    if not present:
        return mark_safe('<p class="muted">No data yet.</p>')
    ceiling = top if top is not None else max(present) or 1.0
    step = width / max(1, len(values) - 1)
    segments: list[list[str]] = [[]]
    for index, value in enumerate(values):
        if value is None:
            segments.append([])
            continue
        y = height - 4 - (min(value, ceiling) / ceiling) * (height - 8)
        segments[-1].append(f"{index * step:.1f},{y:.1f}")
    lines = "".join(
        f'<polyline fill="none" stroke="currentColor" stroke-width="1.5" points="{" ".join(s)}"/>'
        for s in segments
        if s
    )
    caption = f"{label}: last {present[-1]:.2f}{unit}, max {max(present):.2f}{unit}"
    # Only numbers we formatted ourselves and the escaped caption go into the markup.
    return mark_safe(
        f'<svg class="chart" viewBox="0 0 {width} {height}" width="100%" height="{height}" '
        f'role="img" aria-label="{format_html("{}", caption)}">'
        f'<line x1="0" y1="{height - 4}" x2="{width}" y2="{height - 4}" class="axis"/>'
        f"{lines}</svg>"
    )
