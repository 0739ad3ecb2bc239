"""Line charts: every day with data shows, even a day alone between gaps."""

from __future__ import annotations

import re

from review.web.policy.charts import RefLine, Series, line_chart, nice_step


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


def tick_labels(chart) -> list[str]:
    return [label for _, label in chart.y_ticks]


def test_an_automatic_axis_ends_on_a_round_number_and_ticks_at_a_round_step():
    # 53 waiting items: the axis reaches 60 in tens, not 58.3 in quarters (0, 15, 29, 44, 58).
    chart = line_chart("depth", ["d1", "d2"], [Series("waiting", [0, 53], "s1")])
    assert tick_labels(chart) == ["0", "10", "20", "30", "40", "50", "60"]
    # An SLA of 24 hours with little waiting: hours in fives, up past the SLA line.
    chart = line_chart(
        "age", ["d1", "d2"], [Series("oldest", [0.5, 1.0], "s1")], hlines=[RefLine(24, "SLA", "r")]
    )
    assert tick_labels(chart) == ["0", "5", "10", "15", "20", "25", "30"]
    assert chart.hlines[0][0] > chart.y_ticks[-1][0]  # the SLA line sits inside the plot


def test_small_values_and_percentages_get_the_decimals_their_step_needs():
    chart = line_chart("cost", ["d1", "d2"], [Series("usd", [0.0, 0.034], "s1")])
    assert tick_labels(chart) == ["0.00", "0.01", "0.02", "0.03", "0.04"]
    chart = line_chart(
        "audit", ["d1", "d2"], [Series("p", [0.9, 0.95], "s1")], y_min=0.5, y_max=1.0, percent=True
    )
    assert tick_labels(chart) == ["50%", "60%", "70%", "80%", "90%", "100%"]
    # A lower bound that is not round moves the axis down to the next round tick.
    chart = line_chart(
        "audit", ["d1", "d2"], [Series("p", [0.9, 0.95], "s1")], y_min=0.43, y_max=1.0, percent=True
    )
    assert tick_labels(chart)[0] == "40%" and tick_labels(chart)[-1] == "100%"


def test_nice_step_picks_one_two_or_five_times_a_power_of_ten():
    assert [nice_step(span) for span in (1.0, 0.5, 58.3, 26.4, 12.1, 0.0374)] == [
        0.2,
        0.1,
        10,
        5,
        5,
        0.01,
    ]


def label_box(x, baseline, anchor, text):
    from review.web.policy.charts import LABEL_CHAR_WIDTH, LABEL_HEIGHT

    width = len(text) * LABEL_CHAR_WIDTH
    left = x - width if anchor == "end" else x
    return left, baseline - LABEL_HEIGHT, left + width, baseline


def overlap(a, b) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def test_a_high_target_label_keeps_clear_of_the_threshold_label_wherever_the_marker_is():
    # The what-if chart: precision near 100%, a 99% target, the threshold marker anywhere.
    from review.web.policy.charts import VLINE_LABEL_BASELINE

    labels = [f"{k / 100:.2f}" for k in range(101)]
    precision = [0.95 + 0.05 * k / 100 for k in range(101)]
    for marker in (0, 30, 50, 70, 85, 95, 100):
        chart = line_chart(
            "precision",
            labels,
            [Series("precision", precision, "s1")],
            y_min=0.9,
            y_max=1.0,
            percent=True,
            hlines=[RefLine(0.99, "target 99%", "target")],
            marker_index=marker,
            marker_label=f"threshold {labels[marker]}",
        )
        x_marker, text = chart.vline
        x_label, anchor = chart.vline_label
        marker_box = label_box(x_label, VLINE_LABEL_BASELINE, anchor, text)
        target_box = label_box(*chart.hline_labels[0], "target 99%")
        assert not overlap(marker_box, target_box), marker
        assert not target_box[0] < x_marker < target_box[2], marker  # nor crosses the line
        assert 0 <= marker_box[0] and marker_box[2] <= chart.width, marker  # inside the chart
