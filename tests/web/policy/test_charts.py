"""Line charts: every day with data shows, even a day alone between gaps."""

from __future__ import annotations

import re

from review.web.policy.charts import Series, line_chart


def strokes(path: str) -> list[list[tuple[float, float]]]:
    """The path's pen-down runs, as lists of points."""
    runs = []
    for run in re.split(r"(?=M)", path):
        points = [(float(x), float(y)) for x, y in re.findall(r"[ML](-?[\d.]+),(-?[\d.]+)", run)]
        if points:
            runs.append(points)
    return runs


def test_a_lone_day_is_drawn_as_a_short_stroke_and_gaps_lift_the_pen():
    chart = line_chart(
        "override rate",
        ["d1", "d2", "d3", "d4", "d5", "d6"],
        [Series("refund", [None, 0.5, None, 0.2, 0.4, None], "s1")],
        percent=True,
    )
    lone, joined = strokes(chart.paths[0][0])
    assert len(lone) == 2 and lone[0][1] == lone[1][1] and lone[1][0] - lone[0][0] > 0
    assert len(joined) == 2 and joined[0][0] < joined[1][0]
    assert not chart.empty


def test_a_first_day_alone_still_shows():
    chart = line_chart("depth", ["today"], [Series("waiting", [42.0], "s1")])
    (stroke,) = strokes(chart.paths[0][0])
    assert len(stroke) == 2
