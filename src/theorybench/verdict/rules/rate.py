"""``rate``: geometric (linear) convergence of a positive metric, e.g. a training loss.

Claim: ``metric(k) ≈ C · ρᵏ`` along ``along`` (default ``step``) with a log-rate
``ln ρ`` below (``op: "<"``) or above (``op: ">"``) ``value``; the default ``< 0`` just says the
metric decays geometrically. With ``predicted_column`` the claim is about the gap between the
measured and a predicted log-rate instead, e.g. ``ln(1 − ηλ₀/2)`` from a convergence bound:
``op: "<"``, ``value: 0`` then says "at least as fast as the bound".

Effect: for each seed ``s``, the least-squares slope of ``ln metric`` against ``k`` over the rows
with ``from_step ≤ k ≤ to_step``::

    β_s = Σ (k − k̄)(ln y − mean ln y) / Σ (k − k̄)²

(the log-rate per unit of ``along``; ``ρ_s = exp β_s``). Without ``predicted_column`` the effect
is ``mean_s β_s``; with it, ``mean_s (β_s − π_s)`` where ``π_s`` is the seed's mean of that
column over the window.

Interval and p-values: Student-t test over seeds of the mean (gap) against ``value``, ``T = (β̄ −
value) / (s / √n)`` on ``n − 1`` degrees of freedom, interval ``β̄ ± t_{1−α/2, n−1} s / √n``.
Slopes are continuous; if every seed still gives the same slope (noise-free curves) the rule
uses the sign test on how many seeds lie on the claimed side instead (effect = that fraction,
Clopper–Pearson interval, threshold ½; 6 seeds needed at confidence 0.95).

Decision: ``decide_p`` on ``p_holds = P(t_{n−1} ≤ T)`` for ``<`` (``P(t_{n−1} ≥ T)`` for ``>``).

Calibration (``docs/calibration.md``; confidence 0.95, nominal 0.025, 4000 tables per row; 3–16
seeds, 3, 5 and 10 steps in the fit window, normal, Student t₃ and integer-rounded log-metric
noise): worst measured rate of ``holds`` at a true log-rate equal to ``value`` 0.029 ± 0.003
(within Monte-Carlo error of 0.025); power at a log-rate one SD of the per-seed slope beyond
``value``: 0.14–0.26 (3 seeds), 0.42–0.67 (6), 0.61–0.79 (8), 0.94–0.96 (16).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd
from pydantic import Field

from theorybench.registry import rule
from theorybench.verdict.base import RuleError, RuleResult, RuleSpec, decide_p, select
from theorybench.verdict.stats import (
    SIGN_TEST_FALLBACK,
    fmt,
    jsonable,
    level_words,
    numeric_column,
    one_sided_level,
    require_seeds,
    side_test,
    where_words,
)

if TYPE_CHECKING:
    from theorybench.leaderboard.figures import FigureRequest


class RateSpec(RuleSpec):
    rule: Literal["rate"]
    along: str = Field("step", description="the iteration column")
    from_step: float | None = Field(None, description="first `along` value of the fit window")
    to_step: float | None = Field(None, description="last `along` value of the fit window")
    op: Literal["<", ">"] = Field("<", description="the claimed side of `value`")
    value: float = Field(
        0.0,
        description="threshold for the slope of ln(metric) per step (or for slope - predicted)",
    )
    predicted_column: str | None = Field(
        None,
        description="column with a predicted log-rate per step; the claim is then on "
        "slope - predicted",
    )


def log_slopes(steps: np.ndarray, logs: np.ndarray) -> np.ndarray:
    """Least-squares slope of ``logs`` (last axis, any leading axes) against ``steps``."""
    centred = steps - steps.mean()
    return (centred * (logs - logs.mean(axis=-1, keepdims=True))).sum(axis=-1) / (centred**2).sum()



def describe(fields: dict[str, Any]) -> str:
    """The spec in words."""
    along = fields.get("along", "step")
    window = ""
    if fields.get("from_step") is not None or fields.get("to_step") is not None:
        window = f" for {along} in [{fmt(fields.get('from_step'))}, {fmt(fields.get('to_step'))}]"
    slope = f"the least-squares slope of ln {fields.get('metric')} per {along}"
    if fields.get("predicted_column"):
        slope += f" minus the predicted log-rate {fields.get('predicted_column')}"
    return (f"{fields.get('metric')} converges geometrically"
            f"{where_words(fields.get('where') or {})}{window}: {slope}, averaged over seeds, is "
            f"{fields.get('op', '<')} {fmt(fields.get('value', 0.0))} ({level_words(fields)} "
            "Student-t interval)" + SIGN_TEST_FALLBACK)


def figure(request: FigureRequest) -> str | None:
    """The metric along ``along`` per arm on a log axis, where geometric decay is straight."""
    from theorybench.leaderboard.figures import along_figure

    return along_figure(request, ["rate"], lambda ax: ax.plot(
        [], [], ls="", label="predicted: geometric decay (straight on a log axis)"), log_y=True)


@rule(RateSpec, describe=describe, figure=figure)
def rate(spec: RateSpec, table: pd.DataFrame, rng: np.random.Generator) -> RuleResult:
    """Mean per-seed slope of ln(metric) per step (minus the predicted one), t test."""
    extra = [spec.predicted_column] if spec.predicted_column else []
    rows = select(table, spec, "seed", spec.along, *extra)
    steps = numeric_column(rows, spec.along)
    low_step = -np.inf if spec.from_step is None else spec.from_step
    high_step = np.inf if spec.to_step is None else spec.to_step
    rows = rows[(steps >= low_step) & (steps <= high_step)]
    if (rows[spec.metric].astype(float) <= 0).any():
        raise RuleError(f"rate fits ln({spec.metric}), which needs positive values")
    slopes, predicted = {}, {}
    for seed, group in rows.groupby("seed"):
        k = numeric_column(group, spec.along).to_numpy()
        if np.unique(k).size < 2:
            continue
        slopes[seed] = float(log_slopes(k, np.log(group[spec.metric].astype(float).to_numpy())))
        if spec.predicted_column:
            predicted[seed] = float(numeric_column(group, spec.predicted_column).mean())
    seeds = list(slopes)
    require_seeds(seeds, spec)
    slope = np.array([slopes[s] for s in seeds])
    gap = slope - np.array([predicted[s] for s in seeds]) if spec.predicted_column else slope
    test = side_test(gap, spec.value, spec.op == ">", spec.confidence)
    effect, low, high = float(test["effect"]), float(test["low"]), float(test["high"])
    p_holds, p_refuted = float(test["p_holds"]), float(test["p_refuted"])
    level = one_sided_level(spec.confidence)
    decision = decide_p(p_holds, p_refuted, level)
    what = f"slope of ln({spec.metric}) per {spec.along}"
    if spec.predicted_column:
        what += f" minus {spec.predicted_column}"
    limit = spec.value
    if bool(test["sign"]):
        interval = "sign test: every seed gives the same slope (clopper-pearson)"
        summary = (
            f"{what} = {fmt(float(gap[0]))} on every one of {len(seeds)} seeds: fraction "
            f"{spec.op} {fmt(spec.value)} = {fmt(effect)} [{fmt(low)}, {fmt(high)}] (sign test)"
        )
        limit = 0.5
    else:
        interval = "student-t over per-seed least-squares slopes"
        summary = (
            f"{what} = {fmt(effect)} [{fmt(low)}, {fmt(high)}] over {len(seeds)} seeds "
            f"(mean factor {fmt(float(np.exp(slope.mean())))} per {spec.along}), "
            f"claimed {spec.op} {fmt(spec.value)}"
        )
    return RuleResult(
        rule="rate",
        metric=spec.metric,
        decision=decision,
        effect=effect,
        ci_low=low,
        ci_high=high,
        threshold=limit,
        summary=summary,
        detail=jsonable(
            {
                "along": spec.along,
                "window": [spec.from_step, spec.to_step],
                "interval": interval,
                "seeds": seeds,
                "seed_slope": slope,
                "seed_predicted": [predicted[s] for s in seeds] if predicted else None,
                "mean_slope": slope.mean(),
                "n_seeds": len(seeds),
            }
        ),
        p_holds=p_holds,
        p_refuted=p_refuted,
        level=level,
    )
