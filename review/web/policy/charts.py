"""Server-rendered SVG line charts: geometry here, markup in templates/policy/_chart.html.

A chart maps data to a fixed viewBox; the SVG scales with CSS. Series may have gaps
(None values break the line), an interval band, horizontal reference lines (a target, an
SLA) and a vertical marker (the threshold being tried).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

WIDTH, HEIGHT = 640, 240
LEFT, RIGHT, TOP, BOTTOM = 48, 16, 12, 32
# Labels are 11px text (app.css); their width is estimated, the SVG is laid out here.
LABEL_CHAR_WIDTH, LABEL_HEIGHT, LABEL_GAP = 6.5, 11.0, 4.0
VLINE_LABEL_BASELINE = 22.0


@dataclass(frozen=True)
class Series:
    name: str
    values: Sequence[float | None]
    css_class: str  # colours live in app.css
    band_low: Sequence[float | None] | None = None
    band_high: Sequence[float | None] | None = None


@dataclass(frozen=True)
class RefLine:
    value: float
    label: str
    css_class: str


@dataclass
class Chart:
    """Everything the template draws, already in viewBox coordinates."""

    title: str
    width: int
    height: int
    paths: list[tuple[str, str, str]] = field(default_factory=list)  # (d, class, name)
    bands: list[tuple[str, str]] = field(default_factory=list)  # (d, class)
    hlines: list[tuple[float, str, str]] = field(default_factory=list)  # (y, label, class)
    # Where each hline's label is drawn (x, baseline y, text-anchor), aligned with hlines.
    hline_labels: list[tuple[float, float, str]] = field(default_factory=list)
    vline: tuple[float, str] | None = None
    # The vline label's x and text-anchor: on the side of the marker with more room.
    vline_label: tuple[float, str] | None = None
    y_ticks: list[tuple[float, str]] = field(default_factory=list)
    x_ticks: list[tuple[float, str]] = field(default_factory=list)
    legend: list[tuple[str, str]] = field(default_factory=list)
    empty: bool = False


# At most this many intervals between y ticks; the step is the smallest round one that fits.
MAX_Y_INTERVALS = 6


def nice_step(span: float, max_intervals: int = MAX_Y_INTERVALS) -> float:
    """The smallest step of 1, 2 or 5 times a power of ten that cuts `span` into at most
    `max_intervals` pieces, so that axis ticks read 0, 10, 20 rather than 0, 14.5, 29."""
    if span <= 0:
        return 1.0
    power = 10.0 ** math.floor(math.log10(span / max_intervals))
    for multiple in (1, 2, 5, 10):
        step = multiple * power
        # The small tolerance keeps 1.0 / 0.2 from counting as 5.000000001 intervals.
        if span / step <= max_intervals + 1e-9:
            return step
    return 10 * power  # unreachable: 10 * power always fits


def _fmt(value: float, percent: bool, step: float) -> str:
    """A tick label with as many decimals as the step needs and no more."""
    if percent:
        decimals = max(0, -math.floor(math.log10(step * 100) + 1e-9))
        return f"{value * 100:.{decimals}f}%"
    decimals = max(0, -math.floor(math.log10(step) + 1e-9))
    return f"{value:,.{decimals}f}"


# Half the length of the stroke that stands for a point with no neighbour to join.
_DOT = 3.0


def _segments(points: list[tuple[float, float] | None]) -> str:
    """An SVG path through the points, lifting the pen at each gap. A point with a gap (or
    the edge) on both sides gets a short stroke of its own: a path of one point draws
    nothing, and a day of data between quiet days (or a queue's first day) would vanish."""
    parts = []
    for index, point in enumerate(points):
        if point is None:
            continue
        joined_before = index > 0 and points[index - 1] is not None
        joined_after = index + 1 < len(points) and points[index + 1] is not None
        if not joined_before and not joined_after:
            x, y = point
            parts.append(f"M{x - _DOT:.1f},{y:.1f} L{x + _DOT:.1f},{y:.1f}")
        else:
            parts.append(f"{'L' if joined_before else 'M'}{point[0]:.1f},{point[1]:.1f}")
    return " ".join(parts)


def line_chart(
    title: str,
    x_labels: Sequence[str],
    series: Sequence[Series],
    *,
    y_min: float = 0.0,
    y_max: float | None = None,
    percent: bool = False,
    hlines: Sequence[RefLine] = (),
    marker_index: float | None = None,
    marker_label: str = "",
    x_tick_every: int | None = None,
) -> Chart:
    """Lay out `series` over `x_labels` (evenly spaced) between y_min and y_max.

    y_max defaults to the largest value (or reference line), with headroom. The axis is
    widened to round numbers (y_min down, an automatic y_max up) and ticked at a round step.
    """
    chart = Chart(title, WIDTH, HEIGHT)
    values = [v for s in series for v in s.values if v is not None]
    values += [v for s in series for v in (s.band_high or []) if v is not None]
    values += [line.value for line in hlines]
    chart.empty = not any(v is not None for s in series for v in s.values)
    if y_max is None:
        y_max = max(values, default=1.0) * 1.1 or 1.0
    if y_max <= y_min:
        y_max = y_min + 1.0
    step = nice_step(y_max - y_min)
    y_min = math.floor(y_min / step + 1e-9) * step
    y_max = math.ceil(y_max / step - 1e-9) * step
    n = max(len(x_labels), 2)
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def x(i: float) -> float:
        return LEFT + plot_w * i / (n - 1)

    def y(v: float) -> float:
        clamped = min(max(v, y_min), y_max)
        return TOP + plot_h * (1 - (clamped - y_min) / (y_max - y_min))

    for s in series:
        points = [None if v is None else (x(i), y(v)) for i, v in enumerate(s.values)]
        chart.paths.append((_segments(points), s.css_class, s.name))
        chart.legend.append((s.name, s.css_class))
        if s.band_low is not None and s.band_high is not None:
            chart.bands.extend(_bands(s, x, y))
    for line in hlines:
        chart.hlines.append((y(line.value), line.label, line.css_class))
    if marker_index is not None:
        chart.vline = (x(marker_index), marker_label)
    _place_labels(chart)
    intervals = round((y_max - y_min) / step)
    chart.y_ticks = [
        (y(y_min + step * k), _fmt(y_min + step * k, percent, step)) for k in range(intervals + 1)
    ]
    every = x_tick_every or max(1, len(x_labels) // 6)
    chart.x_ticks = [(x(i), label) for i, label in enumerate(x_labels) if i % every == 0]
    return chart


Box = tuple[float, float, float, float]  # left, top, right, bottom


def _text_box(x: float, baseline: float, anchor: str, text: str) -> Box:
    width = len(text) * LABEL_CHAR_WIDTH
    left = x - width if anchor == "end" else x
    return (left, baseline - LABEL_HEIGHT, left + width, baseline)


def _overlap(a: Box, b: Box) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def _place_labels(chart: Chart) -> None:
    """Put the marker's label on the side of the marker with more room, and each
    reference line's label where it touches neither that label nor the marker: at the
    right end above its line, else at the left end, else below the line. A target of 99%
    sits near the top, where the marker's label is, and the two used to print over each
    other."""
    taken: list[Box] = []
    if chart.vline is not None:
        x_marker, text = chart.vline
        right_half = x_marker > (LEFT + chart.width - RIGHT) / 2
        anchor = "end" if right_half else "start"
        x_label = x_marker - LABEL_GAP if right_half else x_marker + LABEL_GAP
        chart.vline_label = (x_label, anchor)
        taken.append(_text_box(x_label, VLINE_LABEL_BASELINE, anchor, text))
        taken.append((x_marker - 1, TOP, x_marker + 1, chart.height - BOTTOM))  # the line
    for y_line, text, _ in chart.hlines:
        right, left = chart.width - RIGHT - 2, LEFT + LABEL_GAP
        candidates = [
            (right, y_line - LABEL_GAP, "end"),
            (left, y_line - LABEL_GAP, "start"),
            (right, y_line + LABEL_HEIGHT + LABEL_GAP / 2, "end"),
            (left, y_line + LABEL_HEIGHT + LABEL_GAP / 2, "start"),
        ]
        chosen = next(
            (c for c in candidates if not any(_overlap(_text_box(*c, text), box) for box in taken)),
            candidates[0],
        )
        chart.hline_labels.append(chosen)
        taken.append(_text_box(*chosen, text))


def _bands(
    s: Series, x: Callable[[float], float], y: Callable[[float], float]
) -> list[tuple[str, str]]:
    """Closed polygons for each unbroken run of the interval band."""
    assert s.band_low is not None and s.band_high is not None
    # Each run holds (index, low, high) of consecutive points where the band is defined.
    runs: list[list[tuple[int, float, float]]] = [[]]
    for i, (low, high) in enumerate(zip(s.band_low, s.band_high, strict=True)):
        if low is None or high is None or s.values[i] is None:
            runs.append([])
        else:
            runs[-1].append((i, low, high))
    bands = []
    for run in runs:
        if len(run) < 2:
            continue
        top = [f"{x(i):.1f},{y(high):.1f}" for i, _, high in run]
        bottom = [f"{x(i):.1f},{y(low):.1f}" for i, low, _ in reversed(run)]
        bands.append(("M" + " L".join(top + bottom) + " Z", f"band {s.css_class}"))
    return bands
