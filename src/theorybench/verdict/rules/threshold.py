"""``threshold``: the metric lies above or below a value, on average or on (nearly) every seed.

Each seed's rows are reduced to one number ``y_s`` (``per_seed``: their mean, max, min, or the
row with the largest ``order_by``, e.g. the last step).

**Mean form** (``form: mean``, the default). Claim: ``E[y] < value`` (``op: "<"``) or
``E[y] > value`` (``op: ">"``). Effect ``ȳ = mean_s y_s``; interval and p-values from the
Student-t test ``T = (ȳ − value) / (s / √n)`` on ``n − 1`` degrees of freedom (interval
``ȳ ± t_{1−α/2, n−1} s / √n``, clipped to ``bounds`` when the metric has a known range). When every
seed gives the same number (``s = 0``) the t interval would collapse: the rule then uses the
sign test on how many seeds lie on each side of ``value`` (effect = that fraction, Clopper–Pearson
interval, threshold ½), which needs ≥ 6 seeds to decide at confidence 0.95. The mean form is for
continuous metrics; for 0/1 outcomes use ``probability``, for "on every seed" use the seeds form.

**Seeds form** (``form: seeds``, a bound claim such as "training error below 1% on every seed").
A seed *violates* the bound when ``y_s`` is not strictly on the claimed side of ``value``. With
``V`` violating seeds of ``n``, the effect is ``V / n`` and the interval is Clopper–Pearson:
``[Beta⁻¹(α/2; V, n − V + 1), Beta⁻¹(1 − α/2; V + 1, n − V)]``. The claim holds when the upper
bound is below ``violation_tolerance`` (``p_holds = P(Bin(n, tol) ≤ V)``), is refuted when the
lower bound is above it (``p_refuted = P(Bin(n, tol) ≥ V)``). With no violation at all, holding
needs ``n > ln(α/2) / ln(1 − tol)`` seeds (tol 0.5: 6; 0.4: 8; 0.25: 13; 0.2: 17; 0.1: 36).

Decision: ``decide_p(p_holds, p_refuted, (1 − confidence)/2)``, the same as the interval
decision against ``value`` (mean form) or ``violation_tolerance`` (seeds form).

Calibration (``docs/calibration.md``; confidence 0.95, nominal 0.025, 4000 tables per row; 3–16
seeds; normal, Student t₃ and integer-rounded noise). Mean form at ``E[y] = value``: worst
measured rate of ``holds`` 0.026 ± 0.003 (within Monte-Carlo error of the exact 0.025); power at
a true mean one noise SD beyond ``value``: 0.08–0.28 (3 seeds), 0.39–0.70 (6), 0.57–0.78 (8),
0.94–0.96 (16). Seeds form at a violating fraction equal to the tolerance (0.25, 0.4, 0.5): worst
0.021 ± 0.002 (exact binomial); power with no violating seed: 0 below the minimum seed count
above, 1 from it on.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd
from pydantic import Field, model_validator

from theorybench.registry import rule
from theorybench.verdict.base import RuleResult, RuleSpec, decide_p, select
from theorybench.verdict.stats import (
    SIGN_TEST_FALLBACK,
    clip,
    fmt,
    jsonable,
    level_words,
    numeric_column,
    one_sided_level,
    proportion_test,
    require_seeds,
    side_test,
    where_words,
)

if TYPE_CHECKING:
    from theorybench.leaderboard.figures import FigureRequest


class ThresholdSpec(RuleSpec):
    rule: Literal["threshold"]
    op: Literal["<", ">"] = Field(description="the claimed side of `value`")
    value: float = Field(description="the threshold the mean (or every seed) is compared with")
    per_seed: Literal["mean", "max", "min", "last"] = Field(
        "mean", description="how a seed's rows are reduced to one number before the interval"
    )
    order_by: str = Field("step", description="column whose largest value is `last`")
    form: Literal["mean", "seeds"] = Field(
        "mean",
        description="mean: the mean over seeds is on the claimed side; seeds: the fraction of "
        "seeds not on the claimed side is below violation_tolerance",
    )
    violation_tolerance: float | None = Field(
        None,
        gt=0.0,
        lt=1.0,
        description="seeds form: the largest fraction of seeds allowed on the wrong side",
    )
    bounds: tuple[float | None, float | None] | None = Field(
        None, description="range of the metric (e.g. [0, 1]); intervals are clipped to it"
    )

    @model_validator(mode="after")
    def _tolerance_with_seeds_form(self) -> ThresholdSpec:
        if self.form == "seeds" and self.violation_tolerance is None:
            raise ValueError("form: seeds states a bound: give violation_tolerance")
        if self.form == "mean" and self.violation_tolerance is not None:
            raise ValueError("violation_tolerance applies to form: seeds only")
        return self


def per_seed_values(rows: pd.DataFrame, spec: ThresholdSpec) -> pd.Series:
    """One number per seed: the ``per_seed`` reduction of its rows."""
    values = rows[spec.metric].astype(float)
    if spec.per_seed == "last":
        order = numeric_column(rows, spec.order_by)
        last = order.groupby(rows["seed"]).transform("max")
        return values[order == last].groupby(rows["seed"][order == last]).mean()
    return values.groupby(rows["seed"]).agg(spec.per_seed)


def bound_test(
    values: np.ndarray, value: float, op: str, tolerance: float, confidence: float
) -> dict[str, np.ndarray]:
    """Seeds form, vectorised over leading axes: violations, CP interval, p-values."""
    v = np.asarray(values, dtype=float)
    violating = (v >= value) if op == "<" else (v <= value)
    k = violating.sum(axis=-1)
    n = v.shape[-1]
    out = proportion_test(k, k, n, tolerance, confidence)
    out["effect"] = k / n
    out["p_holds"], out["p_refuted"] = out["p_below"], out["p_above"]
    out["violations"] = k
    return out



def describe(fields: dict[str, Any]) -> str:
    """The spec in words."""
    metric, where, level = fields.get("metric"), where_words(fields.get("where") or {}), \
        level_words(fields)
    reduce = fields.get("per_seed", "mean")
    if reduce == "last":
        reduce = f"last value (largest {fields.get('order_by', 'step')})"
    op, value = fields.get("op"), fmt(fields.get("value"))
    if fields.get("form") == "seeds":
        bad = "≥" if op == "<" else "≤"
        return (f"at most a fraction {fmt(fields.get('violation_tolerance'))} of seeds have "
                f"the {reduce} of {metric} per seed{where} {bad} {value}: the {level} "
                "Clopper–Pearson interval of the violating fraction must lie below that "
                "tolerance (holds) or above it (refuted).")
    return (f"the {reduce} of {metric} per seed{where}, averaged over seeds, is "
            f"{op} {value} ({level} Student-t interval)" + SIGN_TEST_FALLBACK)


def _threshold_on_axis(result: dict[str, Any]) -> bool:
    """The estimate is in the metric's units: the mean form without the sign-test fallback (a
    seeds-form result is the fraction of violating seeds, a fallback the fraction agreeing)."""
    detail = result.get("detail") or {}
    return (detail.get("form", "mean") == "mean"
            and not str(detail.get("interval", "")).startswith("sign test"))


def figure(request: FigureRequest) -> str | None:
    """Per arm: each seed's value, the mean with its interval when in the metric's units, and
    the claimed value."""
    from theorybench.leaderboard.figures import VALUES_CAPTION, values_figure

    rule = request.rule
    on_axis = any(_threshold_on_axis(r) for r in rule.arm_results.values())
    request.caption = VALUES_CAPTION
    return request.draw(["threshold", request.index], lambda _path: values_figure(
        request, on_axis=_threshold_on_axis,
        off_axis_label=lambda r: ("violating" if (r.get("detail") or {}).get("form") == "seeds"
                                  else "agreeing"),
        axis_note="(per seed; ◆ mean with interval)" if on_axis else "(per seed)",
        claimed=f"claimed {rule.fields.get('op', '')} {rule.fields.get('value')}"))


@rule(ThresholdSpec, describe=describe, figure=figure)
def threshold(spec: ThresholdSpec, table: pd.DataFrame, rng: np.random.Generator) -> RuleResult:
    """Mean over seeds (t test) or fraction of violating seeds (exact binomial) against a bound."""
    extra = [spec.order_by] if spec.per_seed == "last" else []
    rows = select(table, spec, "seed", *extra)
    per_seed = per_seed_values(rows, spec)
    require_seeds(per_seed.index, spec)
    y = per_seed.to_numpy(dtype=float)
    level = one_sided_level(spec.confidence)
    if spec.form == "seeds":
        tol = float(spec.violation_tolerance)  # type: ignore[arg-type]
        test = bound_test(y, spec.value, spec.op, tol, spec.confidence)
        k = int(test["violations"])
        effect, low, high = float(test["effect"]), float(test["low"]), float(test["high"])
        limit = tol
        interval = "clopper-pearson on the fraction of violating seeds"
        summary = (
            f"{k}/{len(y)} seeds have {spec.per_seed} {spec.metric} not {spec.op} "
            f"{fmt(spec.value)}: violating fraction {fmt(effect)} [{fmt(low)}, {fmt(high)}], "
            f"claimed < {fmt(tol)}"
        )
    else:
        test = side_test(y, spec.value, spec.op == ">", spec.confidence)
        effect, low, high = float(test["effect"]), float(test["low"]), float(test["high"])
        if bool(test["sign"]):
            limit = 0.5
            interval = "sign test: every seed gives the same value (clopper-pearson)"
            summary = (
                f"every seed gives {spec.per_seed} {spec.metric} = {fmt(float(y[0]))}: fraction "
                f"of seeds {spec.op} {fmt(spec.value)} = {fmt(effect)} [{fmt(low)}, {fmt(high)}] "
                f"(sign test over {len(y)} seeds)"
            )
        else:
            low, high = clip(low, spec.bounds), clip(high, spec.bounds)
            limit = spec.value
            interval = "student-t over per-seed values"
            summary = (
                f"{spec.per_seed} {spec.metric} per seed, averaged = {fmt(effect)} "
                f"[{fmt(low)}, {fmt(high)}] over {len(y)} seeds, claimed {spec.op} "
                f"{fmt(spec.value)}"
            )
    p_holds, p_refuted = float(test["p_holds"]), float(test["p_refuted"])
    return RuleResult(
        rule="threshold",
        metric=spec.metric,
        decision=decide_p(p_holds, p_refuted, level),
        effect=effect,
        ci_low=low,
        ci_high=high,
        threshold=limit,
        summary=summary,
        detail=jsonable(
            {
                "op": spec.op,
                "value": spec.value,
                "form": spec.form,
                "per_seed": spec.per_seed,
                "interval": interval,
                "seeds": per_seed.index,
                "seed_value": y,
                "n_seeds": len(y),
            }
        ),
        p_holds=p_holds,
        p_refuted=p_refuted,
        level=level,
    )
