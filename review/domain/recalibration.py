"""Recalibration: map raw AI confidences to probabilities that match observed accuracy.

Two methods, fitted per label on human-labeled items weighted by 1 / inclusion
probability (so audited items count for the auto-approved items they stand for):

- Platt scaling: p = sigmoid(a * logit(c) + b), fitted by weighted maximum likelihood
  (Newton's method with a tiny ridge so separable data still converges).
- Isotonic regression: the weighted pool-adjacent-violators fit, a non-decreasing step
  function, interpolated linearly between the block centres.

Both maps are non-decreasing, so a threshold t on the calibrated scale is the same as a
threshold on the raw scale (`raw_threshold`): precision curves precomputed on raw
confidences still answer what-if questions under a recalibrated policy.

A recalibration is stored as a plain dict (`to_dict` / `from_dict`) on a policy version.
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

METHODS = ("platt", "isotonic")
# A label needs this many labeled items, right and wrong, before a fit is trusted.
MIN_OBSERVATIONS = 30
_EPS = 1e-6
# Raw thresholds above every possible confidence: nothing is auto-approved.
NEVER = math.nextafter(1.0, 2.0)


def _logit(p: float) -> float:
    p = min(max(p, _EPS), 1 - _EPS)
    return math.log(p / (1 - p))


def _sigmoid(x: float) -> float:
    if x >= 0:
        return 1 / (1 + math.exp(-x))
    e = math.exp(x)
    return e / (1 + e)


@dataclass(frozen=True)
class Platt:
    a: float
    b: float

    def apply(self, confidence: float) -> float:
        return _sigmoid(self.a * _logit(confidence) + self.b)

    def raw_threshold(self, threshold: float) -> float:
        """The smallest raw confidence whose calibrated value is at least `threshold`."""
        if threshold <= self.apply(0.0):
            return 0.0
        if threshold > self.apply(1.0):
            return NEVER
        if threshold >= 1.0:  # reached only where the sigmoid rounds to 1
            return 1.0
        # a > 0 (checked at fit time), so the map is increasing and invertible.
        # Here 0 < threshold < 1, so its logit needs no clipping.
        raw = _sigmoid((math.log(threshold / (1 - threshold)) - self.b) / self.a)
        # Guard the last ulp so routing (apply >= t) and the inverse agree.
        while raw < 1.0 and self.apply(raw) < threshold:
            raw = math.nextafter(raw, 2.0)
        return raw

    def to_dict(self) -> dict[str, Any]:
        return {"a": self.a, "b": self.b}


@dataclass(frozen=True)
class Isotonic:
    """Knots (x, y) with x strictly and y weakly increasing; flat beyond the ends."""

    xs: tuple[float, ...]
    ys: tuple[float, ...]

    def apply(self, confidence: float) -> float:
        if confidence <= self.xs[0]:
            return self.ys[0]
        if confidence >= self.xs[-1]:
            return self.ys[-1]
        j = bisect_right(self.xs, confidence)
        x0, x1, y0, y1 = self.xs[j - 1], self.xs[j], self.ys[j - 1], self.ys[j]
        return y0 + (confidence - x0) * (y1 - y0) / (x1 - x0)

    def raw_threshold(self, threshold: float) -> float:
        if threshold <= self.ys[0]:
            return 0.0
        if threshold > self.ys[-1]:
            return NEVER
        j = bisect_left(self.ys, threshold)  # first knot reaching the threshold; j >= 1
        x0, x1, y0, y1 = self.xs[j - 1], self.xs[j], self.ys[j - 1], self.ys[j]
        raw = x0 + (threshold - y0) * (x1 - x0) / (y1 - y0)
        while raw < x1 and self.apply(raw) < threshold:
            raw = math.nextafter(raw, 2.0)
        return min(raw, x1)

    def to_dict(self) -> dict[str, Any]:
        return {"x": list(self.xs), "y": list(self.ys)}


ConfidenceMap = Platt | Isotonic


@dataclass(frozen=True)
class Recalibration:
    """A per-label recalibration. Labels without a fit keep their raw confidences."""

    method: str
    by_label: Mapping[str, ConfidenceMap] = field(default_factory=dict)
    skipped: Mapping[str, str] = field(default_factory=dict)  # label -> why not fitted

    def apply(self, label: str, confidence: float) -> float:
        mapping = self.by_label.get(label)
        return mapping.apply(confidence) if mapping is not None else confidence

    def raw_threshold(self, label: str, threshold: float) -> float:
        mapping = self.by_label.get(label)
        return mapping.raw_threshold(threshold) if mapping is not None else threshold

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "labels": {label: m.to_dict() for label, m in sorted(self.by_label.items())},
            "skipped": dict(sorted(self.skipped.items())),
        }


def _finite(value: Any, low: float = -math.inf, high: float = math.inf) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{value!r} is not a number")
    number = float(value)
    if not (math.isfinite(number) and low <= number <= high):
        raise ValueError(f"{value!r} is out of range")
    return number


def _parse_map(method: str, params: Mapping[str, Any]) -> ConfidenceMap:
    if method == "platt":
        a, b = _finite(params["a"]), _finite(params["b"])
        if a <= 0:
            raise ValueError("a Platt slope must be positive (the map must not invert ranks)")
        return Platt(a, b)
    xs = tuple(_finite(x, 0.0, 1.0) for x in params["x"])
    ys = tuple(_finite(y, 0.0, 1.0) for y in params["y"])
    if not xs or len(xs) != len(ys):
        raise ValueError("isotonic knots need as many x as y values, at least one")
    if any(b <= a for a, b in zip(xs, xs[1:], strict=False)):
        raise ValueError("isotonic x values must increase")
    if any(b < a for a, b in zip(ys, ys[1:], strict=False)):
        raise ValueError("isotonic y values must not decrease")
    return Isotonic(xs, ys)


def from_dict(data: Mapping[str, Any] | None) -> Recalibration | None:
    """The recalibration stored on a policy version (None stays None).

    Raises ValueError, KeyError or TypeError for anything that is not a valid
    recalibration, so bad input is refused before it can reach routing.
    """
    if data is None:
        return None
    method = data["method"]
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}")
    labels = data.get("labels", {})
    if not isinstance(labels, Mapping):
        raise TypeError("labels must map each label to its parameters")
    by_label = {str(label): _parse_map(method, params) for label, params in labels.items()}
    skipped = data.get("skipped", {})
    return Recalibration(method, by_label, {str(k): str(v) for k, v in dict(skipped).items()})


# --- fitting ----------------------------------------------------------------------------


def fit_platt(observations: Sequence[tuple[float, bool, float]], ridge: float = 1e-3) -> Platt:
    """Weighted maximum-likelihood Platt scaling on (confidence, correct, weight) triples."""
    xs = [_logit(c) for c, _, _ in observations]
    ys = [1.0 if y else 0.0 for _, y, _ in observations]
    ws = [w for _, _, w in observations]
    total = sum(ws)
    ws = [w / total for w in ws]  # normalised so the ridge means the same at any size
    a, b = 1.0, 0.0
    for _ in range(100):
        ga = gb = haa = hab = hbb = 0.0
        for x, y, w in zip(xs, ys, ws, strict=True):
            p = _sigmoid(a * x + b)
            r = w * (p - y)
            ga += r * x
            gb += r
            s = w * p * (1 - p)
            haa += s * x * x
            hab += s * x
            hbb += s
        ga += ridge * (a - 1.0)  # shrink towards the identity map, not towards flat
        gb += ridge * b
        haa += ridge
        hbb += ridge
        det = haa * hbb - hab * hab
        if det <= 0:
            break
        da = (hbb * ga - hab * gb) / det
        db = (haa * gb - hab * ga) / det
        a, b = a - da, b - db
        if abs(da) < 1e-10 and abs(db) < 1e-10:
            break
    return Platt(a, b)


def fit_isotonic(observations: Sequence[tuple[float, bool, float]]) -> Isotonic:
    """Weighted isotonic regression (pool adjacent violators) of correctness on confidence."""
    # Pool equal confidences first so knots have strictly increasing x.
    pooled: dict[float, list[float]] = {}
    for c, y, w in observations:
        acc = pooled.setdefault(c, [0.0, 0.0])
        acc[0] += w * y
        acc[1] += w
    blocks: list[list[float]] = []  # [sum w*x, sum w*y, sum w]
    for c in sorted(pooled):
        wy, w = pooled[c]
        blocks.append([w * c, wy, w])
        while len(blocks) > 1 and blocks[-2][1] / blocks[-2][2] >= blocks[-1][1] / blocks[-1][2]:
            last = blocks.pop()
            for i in range(3):
                blocks[-1][i] += last[i]
    xs = tuple(wx / w for wx, _, w in blocks)
    ys = tuple(wy / w for _, wy, w in blocks)
    return Isotonic(xs, ys)


def fit(
    method: str,
    observations_by_label: Mapping[str, Iterable[tuple[float, bool, float]]],
    min_observations: int = MIN_OBSERVATIONS,
) -> Recalibration:
    """Fit `method` per label; labels with too little or one-sided evidence are skipped."""
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}")
    by_label: dict[str, ConfidenceMap] = {}
    skipped: dict[str, str] = {}
    for label, raw in sorted(observations_by_label.items()):
        observations = list(raw)
        right = sum(1 for _, y, _ in observations if y)
        if len(observations) < min_observations:
            skipped[label] = f"{len(observations)} labeled items; need {min_observations}"
            continue
        if right in (0, len(observations)):
            skipped[label] = "the AI was always right or always wrong: nothing to fit"
            continue
        if method == "platt":
            platt = fit_platt(observations)
            if platt.a <= 0:  # a decreasing map would invert the ranking: refuse it
                skipped[label] = "confidence does not predict correctness for this label"
                continue
            by_label[label] = platt
        else:
            by_label[label] = fit_isotonic(observations)
    return Recalibration(method, by_label, skipped)
