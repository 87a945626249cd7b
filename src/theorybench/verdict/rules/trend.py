"""``trend``: the metric moves with a swept parameter, in the claimed direction.

Claim: along the column ``along`` the metric increases (or decreases): for most seeds the
rank correlation between the levels and the metric exceeds ``min_effect``; with
``monotone: true``, additionally every adjacent step of the curve goes the claimed way.

Per seed ``s``, the metric is averaged over rows sharing a level ``x`` of ``along`` (``ȳ_s(x)``),
and Kendall's τ_b between the levels and ``ȳ_s`` is taken::

    τ_s = Σ_{i,j} sign(x_i − x_j) sign(ȳ_s(x_i) − ȳ_s(x_j)) / √(#untied x pairs · #untied ȳ pairs)

with the sign flipped for ``direction: decreasing`` (a seed flat across levels has ``τ_s = 0``).

**Rank-correlation test** (sign test on the seeds). τ_s is bounded and discrete (with 5 levels
it takes 11 values, and all seeds often give exactly 1), so a t interval over the τ_s collapses
and leaves [−1, 1]. Instead count ``k₊ = #{s: τ_s > min_effect}`` and ``k₋ = #{s: τ_s <
min_effect}`` of ``n`` seeds. The effect is ``k₊ / n``, the fraction of seeds whose τ clears
``min_effect``; its interval is Clopper–Pearson ``[Beta⁻¹(α/2; k₊, n − k₊ + 1), Beta⁻¹(1 − α/2;
n − k₋ + 1, k₋)]``, inside [0, 1] and never of zero width. ``p_holds = P(Bin(n, ½) ≥ k₊)``
(the null: median τ ≤ ``min_effect``), ``p_refuted = P(Bin(n, ½) ≥ k₋)`` (median τ ≥
``min_effect``). So the claim holds when the lower bound exceeds ½, i.e. the median per-seed τ
exceeds ``min_effect``; at confidence 0.95 that needs ≥ 6 seeds (6/6, 8/8, 13/16 seeds).

**Monotone test** (``monotone: true``, intersection–union). For each adjacent pair of levels
``j → j+1``, the sign test on the seeds' steps ``d_{s,j} = ±(ȳ_s(x_{j+1}) − ȳ_s(x_j))``
(p-value ``p_j = P(Bin(n_j, ½) ≥ #{d_{s,j} > 0})``). The curve is monotone when every step is
significantly in the claimed direction: ``p_mono = max_j p_j`` (no correction is needed for an
intersection–union test). It is refuted when some step goes significantly the wrong way
(Bonferroni over the ``L − 1`` steps). A curve that rises and falls fails it however large τ is.
With ``monotone`` the rule holds when both tests hold (``p_holds = max``) and is refuted when
either refutes (Bonferroni: ``p_refuted = min(1, 2 · min)``).

Calibration (``docs/calibration.md``; confidence 0.95, nominal 0.025, 4000 tables per row; 3–16
seeds, 3, 5 and 10 levels, normal, Student t₃ and integer-rounded noise, ``min_effect`` 0.3 and
0.5, at the boundary where exactly half the seeds clear ``min_effect``): worst measured rate of
``holds`` 0.018 ± 0.002 (exact binomial: 0.016 at 6 seeds, 0.004 at 8, 0.011 at 16, 0 below
6). Power at a rise of one noise SD per level: 0 with 3–4 seeds; from 6 seeds 0.6–1.0 with 5 or
10 levels and ``min_effect`` 0.3, lower with 3 levels or ``min_effect`` 0.5 (down to 0.01 for 3
levels, where τ > 0.5 means a perfectly ordered seed). Monotone at its boundary (one flat step,
the others 3 noise SDs): worst 0.015 ± 0.002; power with every step 3 noise SDs: 0 with 3–4 seeds,
0.04–0.81 with 6–8 (falling with the number of steps and with ties), 0.97–1.00 with 16.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd
from pydantic import Field

from theorybench.registry import rule
from theorybench.verdict.base import RuleError, RuleResult, RuleSpec, decide_p, select
from theorybench.verdict.stats import (
    fmt,
    jsonable,
    kendall_tau,
    level_words,
    one_sided_level,
    per_level_means,
    require_seeds,
    sign_test,
    where_words,
)

if TYPE_CHECKING:
    from theorybench.leaderboard.figures import FigureRequest


class TrendSpec(RuleSpec):
    rule: Literal["trend"]
    along: str = Field(description="numeric column the metric should move with (e.g. depth)")
    direction: Literal["increasing", "decreasing"] = Field(
        description="the claimed direction of the metric as `along` grows"
    )
    min_effect: float = Field(
        0.0,
        ge=0.0,
        lt=1.0,
        description="the median per-seed Kendall tau (in the claimed direction) must exceed this",
    )
    monotone: bool = Field(
        False, description="also require every adjacent step to go the claimed way"
    )


def trend_test(
    levels: np.ndarray,
    curves: np.ndarray,
    sign: float,
    min_effect: float,
    monotone: bool,
    confidence: float,
) -> dict[str, np.ndarray]:
    """The trend rule's statistics for ``curves`` of shape ``(..., seeds, levels)`` (NaN where a
    seed lacks a level): per-seed τ, the sign test on τ, the step tests, and the p-values."""
    taus = sign * kendall_tau(levels, curves)
    tau = sign_test(taus, min_effect, confidence)
    out = {"tau": taus, "effect": tau["effect"], "low": tau["low"], "high": tau["high"]}
    out["n"] = tau["n"]
    p_holds, p_refuted = tau["p_above"], tau["p_below"]
    if monotone:
        steps = sign * np.diff(curves, axis=-1)
        step = sign_test(np.swapaxes(steps, -1, -2), 0.0, confidence)
        n_steps = steps.shape[-1]
        out["step_effect"], out["step_low"], out["step_high"] = (
            step["effect"], step["low"], step["high"]
        )
        out["step_p"] = step["p_above"]
        mono_holds = step["p_above"].max(axis=-1)
        mono_refuted = np.minimum(1.0, n_steps * step["p_below"].min(axis=-1))
        out["p_monotone"] = mono_holds
        p_holds = np.maximum(p_holds, mono_holds)
        p_refuted = np.minimum(1.0, 2.0 * np.minimum(p_refuted, mono_refuted))
    out["p_holds"], out["p_refuted"] = p_holds, p_refuted
    return out



def describe(fields: dict[str, Any]) -> str:
    """The spec in words."""
    metric, along, where = fields.get("metric"), fields.get("along"), where_words(
        fields.get("where") or {})
    text = (f"{metric} is {fields.get('direction')} in {along}{where}: for most seeds, "
            f"Kendall's τ between {along} and the seed's {metric} (signed so that positive is "
            f"the claimed direction) exceeds {fmt(fields.get('min_effect', 0.0))}. The effect "
            f"is the fraction of seeds whose τ exceeds it; the rule holds when the "
            f"{level_words(fields)} Clopper–Pearson interval of that fraction lies above ½ (a sign "
            "test on the median τ, which needs at least 6 seeds, all of them agreeing at 6 or 8), "
            "and is refuted when it lies below ½")
    if fields.get("monotone"):
        text += (f", and every step from one level of {along} to the next goes the claimed "
                 "way on significantly many seeds (a sign test per step; one step going "
                 "significantly the wrong way refutes)")
    return text + "."


def figure(request: FigureRequest) -> str | None:
    """The metric along ``along`` per arm, with the claimed direction (an arrow, top right)."""
    from theorybench.leaderboard.figures import along_figure

    fields = request.rule.fields
    along, direction = fields.get("along"), fields.get("direction")
    up = direction == "increasing"

    def prediction(ax: Any) -> None:
        ax.annotate("", xy=(0.98, 0.96 if up else 0.78), xytext=(0.84, 0.78 if up else 0.96),
                    xycoords="axes fraction",
                    arrowprops={"arrowstyle": "-|>", "color": "0.45", "lw": 1.5})
        ax.plot([], [], color="0.45", lw=1.5,
                label=f"predicted: {direction} in {along} ({'↗' if up else '↘'}, top right)")

    return along_figure(request, ["trend", direction], prediction)


@rule(TrendSpec, describe=describe, figure=figure)
def trend(spec: TrendSpec, table: pd.DataFrame, rng: np.random.Generator) -> RuleResult:
    """Sign test on the per-seed Kendall tau (and, with ``monotone``, on every step)."""
    rows = select(table, spec, "seed", spec.along)
    matrix = per_level_means(rows, spec.metric, spec.along)
    levels = matrix.columns.to_numpy(dtype=float)
    if len(levels) < 3:
        raise RuleError(
            f"trend along {spec.along!r} needs at least 3 distinct values, got {list(levels)}"
        )
    sign = 1.0 if spec.direction == "increasing" else -1.0
    curves = matrix.to_numpy(dtype=float)
    taus = sign * kendall_tau(levels, curves)
    usable = ~np.isnan(taus)
    seeds = matrix.index[usable]
    require_seeds(seeds, spec)
    test = trend_test(
        levels, curves[usable], sign, spec.min_effect, spec.monotone, spec.confidence
    )
    effect, low, high = float(test["effect"]), float(test["low"]), float(test["high"])
    p_holds, p_refuted = float(test["p_holds"]), float(test["p_refuted"])
    level = one_sided_level(spec.confidence)
    k = int(round(effect * len(seeds)))
    seed_tau = taus[usable]
    summary = (
        f"{k}/{len(seeds)} seeds have Kendall tau of {spec.metric} along {spec.along} "
        f"({spec.direction}) > {fmt(spec.min_effect)} (median tau {fmt(float(np.median(seed_tau)))}"
        f"): fraction {fmt(effect)} [{fmt(low)}, {fmt(high)}], claimed > 0.5"
    )
    detail = {
        "along": spec.along,
        "direction": spec.direction,
        "min_effect": spec.min_effect,
        "interval": "sign test on per-seed Kendall tau (clopper-pearson)",
        "levels": levels,
        "level_mean": matrix.mean(axis=0).to_numpy(),
        "level_sd": matrix.std(axis=0, ddof=1).to_numpy(),
        "seeds": seeds,
        "seed_tau": seed_tau,
        "mean_tau": float(seed_tau.mean()),
        "median_tau": float(np.median(seed_tau)),
        "n_seeds": len(seeds),
        "monotone": spec.monotone,
    }
    if spec.monotone:
        weakest = int(np.argmax(test["step_p"]))
        detail |= {
            "step_fraction": test["step_effect"],
            "step_low": test["step_low"],
            "step_high": test["step_high"],
            "step_p": test["step_p"],
            "p_monotone": float(test["p_monotone"]),
        }
        step = [float(test[key][weakest]) for key in ("step_effect", "step_low", "step_high")]
        summary += (
            f"; weakest step {fmt(levels[weakest])}→{fmt(levels[weakest + 1])}: a fraction "
            f"{fmt(step[0])} [{fmt(step[1])}, {fmt(step[2])}] of seeds step the claimed way"
        )
    return RuleResult(
        rule="trend",
        metric=spec.metric,
        decision=decide_p(p_holds, p_refuted, level),
        effect=effect,
        ci_low=low,
        ci_high=high,
        threshold=0.5,
        summary=summary,
        detail=jsonable(detail),
        p_holds=p_holds,
        p_refuted=p_refuted,
        level=level,
    )
