"""``peak``: the metric has an interior maximum inside a claimed window of a swept parameter.

Claim: the seed-mean curve ``m(x) = mean_s y_s(x)`` along ``along`` peaks at a location inside
``window = [lo, hi]``, strictly inside the sweep, and the peak exceeds both ends of the sweep by
more than ``min_excess`` (metric units), e.g. double descent: test risk peaks near m/n = 1.

Each seed's rows are averaged per level ``x_0 < … < x_{L−1}`` of ``along``; seeds missing a level
are left out (the curves are paired over seeds).

Effect (reported): the **location** of the maximum of ``m``, on the scale ``u = x`` (or
``u = ln x`` with ``log_along``, for geometric grids): at the argmax level ``j``, the vertex of the
parabola through ``(u_{j−1}, m_{j−1}), (u_j, m_j), (u_{j+1}, m_{j+1})``, clipped to
``[u_{j−1}, u_{j+1}]``; ``u_j`` itself when ``j`` is an end. It is reported in units of ``along``.

Interval for the location: percentile bootstrap over seeds (resample seeds, recompute ``m`` and
its location).

Peak excess: with ``j*`` the interior level (``1 ≤ j ≤ L − 2``) of largest ``m``, the per-seed
paired differences ``d_s^left = y_s(x_{j*}) − y_s(x_0)`` and ``d_s^right = y_s(x_{j*}) −
y_s(x_{L−1})``, each with a Student-t interval over seeds. Because ``j*`` is chosen as the best of
the ``L − 2`` interior levels, the intervals use the Bonferroni level ``1 − (1 − confidence) /
(L − 2)``, which bounds the chance of a spurious peak on a flat curve. The excess is
``min(mean d^left, mean d^right)`` with interval ``[min(low^left, low^right), min(high^left,
high^right)]``: its low end clears ``min_excess`` only when both ends are cleared, its high end
falls below when either end is not reached.

Decision: the location *holds* when ``decide(low, high, lo, "above")`` and ``decide(low, high,
hi, "below")`` both hold, is *refuted* when either is refuted; the excess decision is
``decide(low, high, min_excess, "above")``. The rule holds when both hold, is refuted when
either is refuted (e.g. a monotone curve: the peak sits at an end, and the best interior level
lies significantly below it), and is inconclusive otherwise.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd
from pydantic import Field, model_validator

from theorybench.registry import rule
from theorybench.verdict.base import Decision, RuleError, RuleResult, RuleSpec, decide, select
from theorybench.verdict.stats import (
    bootstrap_rows,
    fmt,
    jsonable,
    per_level_means,
    percentile_interval,
    require_seeds,
    t_interval,
)


class PeakSpec(RuleSpec):
    rule: Literal["peak"]
    along: str = Field(description="numeric column the peak is located along (e.g. n_features)")
    window: tuple[float, float] = Field(
        description="[lo, hi]: where the maximum is claimed to be, in units of `along`"
    )
    log_along: bool = Field(False, description="locate the maximum on a log scale of `along`")
    min_excess: float = Field(
        0.0, description="the peak must exceed both ends of the sweep by more than this"
    )
    n_boot: int = Field(2000, ge=200, description="bootstrap resamples over seeds")

    @model_validator(mode="after")
    def _ordered_window(self) -> PeakSpec:
        if self.window[0] > self.window[1]:
            raise ValueError(f"window must be [lo, hi] with lo <= hi, got {list(self.window)}")
        return self


def peak_location(u: np.ndarray, curves: np.ndarray) -> np.ndarray:
    """Location on the ``u`` scale of the maximum of each row of ``curves`` (shape ``(..., L)``):
    the vertex of the parabola through the argmax and its neighbours, or the argmax at an end."""
    last = len(u) - 1
    j = np.argmax(curves, axis=-1)
    inner = np.clip(j, 1, last - 1)
    x0, x1, x2 = u[inner - 1], u[inner], u[inner + 1]
    take = np.take_along_axis
    y0, y1, y2 = (take(curves, (inner + k)[..., None], axis=-1)[..., 0] for k in (-1, 0, 1))
    a = (x2 * (y1 - y0) + x1 * (y0 - y2) + x0 * (y2 - y1)) / ((x0 - x1) * (x0 - x2) * (x1 - x2))
    b = (x2**2 * (y0 - y1) + x1**2 * (y2 - y0) + x0**2 * (y1 - y2)) / (
        (x0 - x1) * (x0 - x2) * (x1 - x2)
    )
    with np.errstate(divide="ignore", invalid="ignore"):
        vertex = np.where(a < 0, -b / (2 * a), x1)
    vertex = np.clip(vertex, x0, x2)
    return np.where((j == 0) | (j == last), u[j], vertex)


def _both(first: Decision, second: Decision) -> Decision:
    if "refuted" in (first, second):
        return "refuted"
    return "holds" if first == second == "holds" else "inconclusive"


@rule(PeakSpec)
def peak(spec: PeakSpec, table: pd.DataFrame, rng: np.random.Generator) -> RuleResult:
    """Bootstrap location of the maximum of the seed-mean curve, and its excess over both ends."""
    rows = select(table, spec, "seed", spec.along)
    matrix = per_level_means(rows, spec.metric, spec.along)
    complete = matrix.dropna()
    levels = complete.columns.to_numpy(dtype=float)
    if len(levels) < 3:
        raise RuleError(f"peak along {spec.along!r} needs at least 3 levels, got {list(levels)}")
    require_seeds(complete.index, spec)
    if spec.log_along and (levels <= 0).any():
        raise RuleError(f"log_along needs positive {spec.along!r} values, got {list(levels)}")
    u = np.log(levels) if spec.log_along else levels
    to_along = np.exp if spec.log_along else (lambda v: v)
    y = complete.to_numpy(dtype=float)

    curve = y.mean(axis=0)
    location = float(to_along(peak_location(u, curve)))
    boot = peak_location(u, y[bootstrap_rows(rng, len(y), spec.n_boot)].mean(axis=1))
    u_low, u_high = percentile_interval(boot, spec.confidence)
    low, high = float(to_along(u_low)), float(to_along(u_high))
    where = _both(
        decide(low, high, spec.window[0], "above"), decide(low, high, spec.window[1], "below")
    )

    top = 1 + int(np.argmax(curve[1:-1]))
    level = 1.0 - (1.0 - spec.confidence) / (len(levels) - 2)
    left = [float(v) for v in t_interval(y[:, top] - y[:, 0], level)]
    right = [float(v) for v in t_interval(y[:, top] - y[:, -1], level)]
    excess = (min(left[0], right[0]), min(left[1], right[1]), min(left[2], right[2]))
    above = decide(excess[1], excess[2], spec.min_excess, "above")

    decision = _both(where, above)
    scale = "log " if spec.log_along else ""
    summary = (
        f"max of mean {spec.metric} along {scale}{spec.along} at {fmt(location)} "
        f"[{fmt(low)}, {fmt(high)}], claimed in [{fmt(spec.window[0])}, {fmt(spec.window[1])}]; "
        f"peak minus higher end = {fmt(excess[0])} [{fmt(excess[1])}, {fmt(excess[2])}], "
        f"claimed > {fmt(spec.min_excess)} ({len(y)} seeds)"
    )
    return RuleResult(
        rule="peak",
        metric=spec.metric,
        decision=decision,
        effect=location,
        ci_low=low,
        ci_high=high,
        threshold=None,
        summary=summary,
        detail=jsonable(
            {
                "along": spec.along,
                "window": list(spec.window),
                "log_along": spec.log_along,
                "interval": "percentile bootstrap over seeds (location); Bonferroni student-t "
                "over paired seeds (excess)",
                "levels": levels,
                "level_mean": curve,
                "level_sd": y.std(axis=0, ddof=1),
                "location_decision": where,
                "peak_level": levels[top],
                "excess": list(excess),
                "excess_left": left,
                "excess_right": right,
                "excess_confidence": level,
                "excess_decision": above,
                "min_excess": spec.min_excess,
                "seeds": complete.index,
                "dropped_seeds": matrix.index.difference(complete.index),
                "n_seeds": len(y),
            }
        ),
    )
