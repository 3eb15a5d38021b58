"""Inline SVG charts for the dashboard, drawn in Python: grouped bars, lines over time, a heatmap grid.

Every label is escaped; the output is a string to embed in a page (no script, no external resource).
Each chart has a title, axis labels and a legend whose entries carry ``class="legend-entry"``.

>>> svg = bar_chart(["v0001"], ["pipeline"], {("v0001", "pipeline"): 0.31}, "ndcg@10", "model version", "ndcg@10")
>>> "pipeline" in svg
True
"""

from __future__ import annotations

import math
from collections.abc import Callable
from html import escape

PALETTE = ("#0072b2", "#e69f00", "#009e73", "#cc79a7", "#56b4e9", "#d55e00", "#f0e442", "#000000")
"""Okabe-Ito colours (distinguishable with the common colour-vision deficiencies)."""
WIDTH, HEIGHT = 520, 300
LEFT, RIGHT, TOP, BOTTOM = 56, 12, 34, 60
PLOT_BOTTOM = HEIGHT - BOTTOM
"""The plot area's lower edge; legend rows beyond the first make the chart taller below it."""
LEGEND_ROW = 18


def nice_ceiling(value: float) -> float:
    """Smallest of 1, 2, 2.5, 5 times a power of ten that is >= ``value`` (1 for nothing to show)."""
    if not math.isfinite(value) or value <= 0:
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    return next(step * power for step in (1, 2, 2.5, 5, 10) if step * power >= value * (1 - 1e-9))


def _color(i: int) -> str:
    return PALETTE[i % len(PALETTE)]


def _frame(title: str, x_label: str, y_label: str, height: int, css_class: str) -> list[str]:
    return [
        f'<svg class="chart {escape(css_class)}" viewBox="0 0 {WIDTH} {height}" width="{WIDTH}" height="{height}" '
        f'role="img" aria-label="{escape(title)}" xmlns="http://www.w3.org/2000/svg">',
        f"<title>{escape(title)}</title>",
        f'<text class="chart-title" x="{WIDTH / 2}" y="18" text-anchor="middle">{escape(title)}</text>',
        f'<text class="axis-label x-label" x="{(LEFT + WIDTH - RIGHT) / 2}" y="{PLOT_BOTTOM + 34}" '
        f'text-anchor="middle">{escape(x_label)}</text>',
        f'<text class="axis-label y-label" transform="translate(14 {(TOP + PLOT_BOTTOM) / 2}) rotate(-90)" '
        f'text-anchor="middle">{escape(y_label)}</text>',
        f'<line class="axis" x1="{LEFT}" y1="{PLOT_BOTTOM}" x2="{WIDTH - RIGHT}" y2="{PLOT_BOTTOM}"/>',
        f'<line class="axis" x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{PLOT_BOTTOM}"/>',
    ]


def _y_ticks(top: float, fmt: Callable[[float], str]) -> list[str]:
    out = []
    for step in range(5):
        value = top * step / 4
        y = PLOT_BOTTOM - (PLOT_BOTTOM - TOP) * step / 4
        out.append(f'<line class="grid" x1="{LEFT}" y1="{y:.1f}" x2="{WIDTH - RIGHT}" y2="{y:.1f}"/>')
        out.append(f'<text class="tick" x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">{escape(fmt(value))}</text>')
    return out


def _legend(series: list[str]) -> list[str]:
    """Legend rows under the x-axis label, up to three entries a row."""
    out = []
    for i, name in enumerate(series):
        x = LEFT + (i % 3) * 170
        y = PLOT_BOTTOM + 50 + (i // 3) * LEGEND_ROW
        out.append(
            f'<g class="legend-entry"><rect x="{x}" y="{y - 10}" width="12" height="12" fill="{_color(i)}"/>'
            f'<text x="{x + 17}" y="{y}">{escape(name)}</text></g>'
        )
    return out


def _height(n_series: int) -> int:
    return HEIGHT + LEGEND_ROW * max(0, math.ceil(n_series / 3) - 1)


def bar_chart(
    groups: list[str], series: list[str], values: dict[tuple[str, str], float], title: str, x_label: str, y_label: str
) -> str:
    """Grouped bars: one group per entry of ``groups`` (x-axis), one bar per series within it.

    ``values[(group, series)]`` is the bar height; a missing pair draws no bar.
    """
    height = _height(len(series))
    top = nice_ceiling(max(values.values(), default=0.0))
    parts = _frame(title, x_label, y_label, height, "chart-bars")
    parts += _y_ticks(top, lambda v: f"{v:.3g}")
    group_width = (WIDTH - RIGHT - LEFT) / max(1, len(groups))
    bar_width = group_width * 0.8 / max(1, len(series))
    for g, group in enumerate(groups):
        x0 = LEFT + g * group_width + group_width * 0.1
        for s, name in enumerate(series):
            value = values.get((group, name))
            if value is None:
                continue
            h = (PLOT_BOTTOM - TOP) * value / top
            parts.append(
                f'<rect class="bar" x="{x0 + s * bar_width:.1f}" y="{PLOT_BOTTOM - h:.1f}" width="{bar_width - 1:.1f}" '
                f'height="{h:.1f}" fill="{_color(s)}"><title>{escape(f"{group} {name}: {value:.4f}")}</title></rect>'
            )
        parts.append(
            f'<text class="tick" x="{x0 + group_width * 0.4:.1f}" y="{PLOT_BOTTOM + 16}" '
            f'text-anchor="middle">{escape(group)}</text>'
        )
    parts += _legend(series)
    parts.append("</svg>")
    return "".join(parts)


def line_chart(
    lines: dict[str, list[tuple[float, float, str]]],
    title: str,
    x_label: str,
    y_label: str,
    x_format: Callable[[float], str],
    y_format: Callable[[float], str],
) -> str:
    """One line per series over a shared numeric x-axis; points are ``(x, y, tooltip)``.

    A series with one point shows as a dot; the x-axis is labelled at its first, middle and last value.
    """
    names = list(lines)
    height = _height(len(names))
    xs = sorted({x for points in lines.values() for x, _, _ in points})
    top = nice_ceiling(max((y for points in lines.values() for _, y, _ in points), default=0.0))
    lo, hi = (xs[0], xs[-1]) if xs else (0.0, 1.0)

    def px(x: float) -> float:
        inner = WIDTH - RIGHT - LEFT - 40
        return LEFT + 20 + (inner * (x - lo) / (hi - lo) if hi > lo else inner / 2)

    def py(y: float) -> float:
        return PLOT_BOTTOM - (PLOT_BOTTOM - TOP) * y / top

    parts = _frame(title, x_label, y_label, height, "chart-lines")
    parts += _y_ticks(top, y_format)
    for x in sorted({xs[0], xs[len(xs) // 2], xs[-1]} if xs else set()):
        parts.append(
            f'<text class="tick" x="{px(x):.1f}" y="{PLOT_BOTTOM + 16}" '
            f'text-anchor="middle">{escape(x_format(x))}</text>'
        )
    for i, name in enumerate(names):
        points = sorted(lines[name])
        coords = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y, _ in points)
        parts.append(f'<g class="series" data-series="{escape(name)}">')
        if len(points) > 1:
            parts.append(f'<polyline points="{coords}" fill="none" stroke="{_color(i)}" stroke-width="2"/>')
        for x, y, tip in points:
            parts.append(
                f'<circle cx="{px(x):.1f}" cy="{py(y):.1f}" r="3.5" fill="{_color(i)}">'
                f"<title>{escape(tip)}</title></circle>"
            )
        parts.append("</g>")
    parts += _legend(names)
    parts.append("</svg>")
    return "".join(parts)


def heatmap_table(
    rows: list[str],
    columns: list[str],
    values: list[list[float]],
    row_tips: list[str],
    column_tips: list[str],
    caption: str,
    corner: str,
) -> str:
    """A labelled grid (HTML table) whose cell colour intensity is the value in [0, 1], with a scale."""
    head = "".join(
        f'<th class="hm-col" scope="col" title="{escape(tip)}"><span>{escape(label)}</span></th>'
        for label, tip in zip(columns, column_tips, strict=True)
    )
    body = []
    for label, tip, row in zip(rows, row_tips, values, strict=True):
        cells = []
        for column, value in zip(columns, row, strict=True):
            share = min(1.0, max(0.0, float(value)))
            text = f"{share:.0%}" if share > 0 else ""
            cells.append(
                f'<td class="hm-cell" data-share="{share:.4f}" style="background: rgba(0, 114, 178, {share:.3f})'
                f'{"; color: #fff" if share > 0.45 else ""}" title="{escape(f"{label} → {column}: {share:.0%}")}">'
                f"{text}</td>"
            )
        body.append(
            f'<tr><th class="hm-row" scope="row" title="{escape(tip)}">{escape(label)}</th>{"".join(cells)}</tr>'
        )
    scale = "".join(f'<span style="background: rgba(0, 114, 178, {v / 4:.2f})">{v * 25}%</span>' for v in range(5))
    return (
        f'<table class="heatmap"><caption>{escape(caption)}</caption>'
        f'<thead><tr><th class="hm-corner">{escape(corner)}</th>{head}</tr></thead>'
        f'<tbody>{"".join(body)}</tbody></table><div class="hm-scale" aria-hidden="true">{scale}</div>'
    )


def band_chart(
    points: list[tuple[float, float, float, float, str]],
    title: str,
    x_label: str,
    y_label: str,
    x_format: Callable[[float], str],
    y_format: Callable[[float], str],
) -> str:
    """An estimate over time with its interval as a shaded band and a dashed line at zero; points are
    ``(x, estimate, low, high, tooltip)``. The y-axis spans the data and zero (values may be negative)."""
    height = HEIGHT
    points = sorted(points)
    spread = [v for _, est, low, high, _ in points for v in (est, low, high) if math.isfinite(v)]
    lo, hi = min([0.0, *spread]), max([0.0, *spread])
    pad = (hi - lo) * 0.05 or 0.01
    lo, hi = lo - pad, hi + pad
    xs = [x for x, *_ in points]
    x0, x1 = (xs[0], xs[-1]) if xs else (0.0, 1.0)

    def px(x: float) -> float:
        inner = WIDTH - RIGHT - LEFT - 40
        return LEFT + 20 + (inner * (x - x0) / (x1 - x0) if x1 > x0 else inner / 2)

    def py(y: float) -> float:
        return PLOT_BOTTOM - (PLOT_BOTTOM - TOP) * (y - lo) / (hi - lo)

    parts = _frame(title, x_label, y_label, height, "chart-band")
    for step in range(5):
        value = lo + (hi - lo) * step / 4
        y = py(value)
        parts.append(f'<line class="grid" x1="{LEFT}" y1="{y:.1f}" x2="{WIDTH - RIGHT}" y2="{y:.1f}"/>')
        parts.append(
            f'<text class="tick" x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">{escape(y_format(value))}</text>'
        )
    for x in sorted({xs[0], xs[len(xs) // 2], xs[-1]} if xs else set()):
        parts.append(
            f'<text class="tick" x="{px(x):.1f}" y="{PLOT_BOTTOM + 16}" '
            f'text-anchor="middle">{escape(x_format(x))}</text>'
        )
    parts.append(
        f'<line class="zero" x1="{LEFT}" y1="{py(0):.1f}" x2="{WIDTH - RIGHT}" y2="{py(0):.1f}" '
        'stroke="#52606d" stroke-dasharray="4 3"/>'
    )
    if points:
        upper = [f"{px(x):.1f},{py(high):.1f}" for x, _, _, high, _ in points]
        lower = [f"{px(x):.1f},{py(low):.1f}" for x, _, low, _, _ in reversed(points)]
        parts.append(
            f'<polygon class="band" points="{" ".join(upper + lower)}" fill="{_color(0)}" fill-opacity="0.2"/>'
        )
        line = " ".join(f"{px(x):.1f},{py(est):.1f}" for x, est, _, _, _ in points)
        parts.append(f'<polyline class="estimate" points="{line}" fill="none" stroke="{_color(0)}" stroke-width="2"/>')
        for x, est, _, _, tip in points:
            parts.append(
                f'<circle cx="{px(x):.1f}" cy="{py(est):.1f}" r="2.5" fill="{_color(0)}">'
                f"<title>{escape(tip)}</title></circle>"
            )
    parts += _legend(["estimate, with its always-valid interval (band)"])
    parts.append("</svg>")
    return "".join(parts)
