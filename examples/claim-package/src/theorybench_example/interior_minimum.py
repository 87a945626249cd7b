"""``interior_minimum``: a curve along a swept or recorded column dips below both of its ends.

Claim (``present: true``, the default): some interior level ``j`` of ``along`` (not the first,
not the last) has a mean metric lower than at the first level and at the last level, each by more
than ``min_effect`` (a U-shape, e.g. test risk along training time with an early-stopping
optimum). With ``present: false`` the claim is the opposite: no interior level does.

Per seed ``s``, the metric is averaged over rows sharing a level (``y_s(x)``); the seeds whose
curve lacks a level are dropped. For each interior level ``j = 1 … J`` (``J = L − 2``) the paired
gaps to the two ends are

    g⁻_{s,j} = y_s(x_1) − y_s(x_j)          (the fall from the start)
    g⁺_{s,j} = y_s(x_L) − y_s(x_j)          (the rise to the end)

and the depth at ``j`` is ``D_j = min(E g⁻_j, E g⁺_j)``. Each mean is tested against
``min_effect`` with the one-sided Student-t test over seeds of
:func:`theorybench.verdict.stats.mean_test` (continuity-corrected for discrete metrics; the sign
test where every seed gives the same gap), giving ``p⁻_above(j)``, ``p⁺_above(j)`` (null: mean ≤
``min_effect``) and ``p⁻_below(j)``, ``p⁺_below(j)`` (null: mean ≥ ``min_effect``).

* **A dip at j** (``D_j > min_effect``) needs both gaps: intersection–union,
  ``p_dip(j) = max(p⁻_above(j), p⁺_above(j))``.
* **No dip at j** (``D_j ≤ min_effect``) needs either gap to fail: ``p_flat(j) = min(1,
  2 · min(p⁻_below(j), p⁺_below(j)))`` (Bonferroni over the two).
* **Some interior level dips**: Bonferroni over the ``J`` levels, ``p_some = min(1, J · min_j
  p_dip(j))``. **No interior level dips**: intersection–union, ``p_none = max_j p_flat(j)``.

``present: true``: ``p_holds = p_some``, ``p_refuted = p_none``; ``present: false``: the other
way round. The decision is :func:`theorybench.verdict.base.decide_p` at the one-sided level
``(1 − confidence)/2``. Each null is composite; its least favourable point (the boundary) is,
for "some level dips", every interior level with one gap exactly ``min_effect`` and the other far
above it (then ``P(holds) ≤ J · level/J``), and for "no level dips", one level with both gaps
exactly ``min_effect`` and every other level far from dipping (``P ≤ 2 · level/2``).

The reported effect is the depth ``D_j`` at the deepest level (largest ``D_j``), and its interval
is ``[min(low⁻, low⁺), min(high⁻, high⁺)]`` of the two gaps' t intervals at the Bonferroni level
``1 − (1 − confidence)/J``, so for ``present: true`` the interval's low end exceeds
``min_effect`` exactly when ``p_some`` ≤ level at that level. It needs ≥ 3 levels and ≥ 3 seeds.

Calibration (the package's ``tests/test_interior_minimum.py``, 2000 tables per case, normal and
Student t₃ noise, 4–16 seeds, 3–8 levels): the rate of ``holds`` at each boundary stays at or
below the nominal 0.025 plus three Monte-Carlo standard errors; power with a dip of 2 noise SDs
below both ends is ≥ 0.8 from 8 seeds.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import pandas as pd
from pydantic import Field

from theorybench.registry import rule
from theorybench.verdict.base import RuleError, RuleResult, RuleSpec, decide_p, select
from theorybench.verdict.stats import (
    fmt,
    jsonable,
    level_words,
    mean_test,
    one_sided_level,
    per_level_means,
    require_seeds,
    where_words,
)


class InteriorMinimumSpec(RuleSpec):
    rule: Literal["interior_minimum"]
    along: str = Field(description="numeric column the curve runs along (e.g. time, width)")
    present: bool = Field(True, description="true: an interior level dips below both ends; "
                                            "false: none does")
    min_effect: float = Field(0.0, ge=0.0, description="how far (in the metric's units) an "
                                                         "interior level must lie below both ends")


def interior_minimum_test(curves: np.ndarray, min_effect: float, confidence: float
                          ) -> dict[str, Any]:
    """The rule's statistics for ``curves`` of shape ``(..., seeds, levels)`` (levels ascending,
    no NaN; leading axes are independent tables): per interior level the two gaps' tests
    (shape ``(..., J)``), and ``p_some``, ``p_none`` (shape ``(...)``)."""
    curves = np.asarray(curves, dtype=float)
    inner = curves[..., 1:-1]  # (..., n, J)
    fall = np.swapaxes(curves[..., :1] - inner, -1, -2)  # (..., J, n)
    rise = np.swapaxes(curves[..., -1:] - inner, -1, -2)
    j_count = inner.shape[-1]
    down, up = mean_test(fall, min_effect, confidence), mean_test(rise, min_effect, confidence)
    p_dip = np.maximum(down["p_above"], up["p_above"])
    p_flat = np.minimum(1.0, 2.0 * np.minimum(down["p_below"], up["p_below"]))
    adjusted = 1.0 - (1.0 - confidence) / j_count
    down_adj = mean_test(fall, min_effect, adjusted)
    up_adj = mean_test(rise, min_effect, adjusted)
    return {
        "fall": down["effect"], "rise": up["effect"],
        "depth": np.minimum(down["effect"], up["effect"]),
        "low": np.minimum(down_adj["low"], up_adj["low"]),
        "high": np.minimum(down_adj["high"], up_adj["high"]),
        "p_dip": p_dip, "p_flat": p_flat,
        "p_some": np.minimum(1.0, j_count * p_dip.min(axis=-1)), "p_none": p_flat.max(axis=-1),
    }


def describe(fields: dict[str, Any]) -> str:
    """The spec in words."""
    metric, along = fields.get("metric"), fields.get("along")
    where = where_words(fields.get("where") or {})
    depth = fmt(fields.get("min_effect", 0.0))
    test = (f"per interior level of {along}, paired one-sided t tests over seeds of the fall "
            f"from the first level and the rise to the last against {depth} (both must exceed "
            f"it: an intersection–union test), Bonferroni over the interior levels, at the "
            f"one-sided level of a {level_words(fields)} interval")
    if fields.get("present", True):
        return (f"{metric} along {along}{where} has an interior minimum: at some level other "
                f"than the first and the last, its mean over seeds lies more than {depth} below "
                f"both ends ({test}). Refuted when at every interior level the fall or the rise "
                f"is significantly at most {depth}.")
    return (f"{metric} along {along}{where} has no interior minimum: at no level other than the "
            f"first and the last does its mean over seeds lie more than {depth} below both ends. "
            f"Holds when at every interior level the fall or the rise is significantly at most "
            f"{depth}; refuted when some level dips ({test}).")


def figure(request: Any) -> str | None:
    """The measured curve of each arm along ``along``, with seed bands (a
    :class:`theorybench.leaderboard.figures.FigureRequest`; matplotlib is imported on use)."""
    from theorybench.leaderboard.figures import along_figure

    return along_figure(request, ["interior_minimum"])


@rule(InteriorMinimumSpec, describe=describe, figure=figure)
def interior_minimum(spec: InteriorMinimumSpec, table: pd.DataFrame,
                     rng: np.random.Generator) -> RuleResult:
    """Paired t tests of the fall and the rise at each interior level (see the module)."""
    rows = select(table, spec, "seed", spec.along)
    matrix = per_level_means(rows, spec.metric, spec.along).dropna()
    levels = matrix.columns.to_numpy(dtype=float)
    if len(levels) < 3:
        raise RuleError(f"interior_minimum along {spec.along!r} needs at least 3 distinct "
                        f"values, got {list(levels)}")
    require_seeds(matrix.index, spec)
    test = interior_minimum_test(matrix.to_numpy(dtype=float), spec.min_effect,
                                 spec.confidence)
    deepest = int(np.argmax(test["depth"]))
    p_some, p_none = float(test["p_some"]), float(test["p_none"])
    p_holds, p_refuted = (p_some, p_none) if spec.present else (p_none, p_some)
    effect, low, high = (float(test[key][deepest]) for key in ("depth", "low", "high"))
    at = fmt(levels[deepest + 1])
    mean = matrix.mean(axis=0).to_numpy()
    summary = (f"deepest interior level {spec.along} = {at}: {spec.metric} "
               f"{fmt(mean[deepest + 1])} vs {fmt(mean[0])} at the start and {fmt(mean[-1])} at "
               f"the end; depth {fmt(effect)} [{fmt(low)}, {fmt(high)}], claimed "
               f"{'>' if spec.present else '≤'} {fmt(spec.min_effect)} "
               f"(p some level dips {fmt(p_some)}, p none dips {fmt(p_none)})")
    detail = {
        "along": spec.along, "present": spec.present, "min_effect": spec.min_effect,
        "interval": "paired t (Bonferroni over interior levels) of the smaller gap",
        "levels": levels, "level_mean": mean, "level_sd": matrix.std(axis=0, ddof=1).to_numpy(),
        "seeds": matrix.index, "n_seeds": len(matrix.index), "deepest": levels[deepest + 1],
        "fall": test["fall"], "rise": test["rise"], "depth": test["depth"],
        "p_dip": test["p_dip"], "p_flat": test["p_flat"], "p_some": p_some, "p_none": p_none,
    }
    return RuleResult(
        rule="interior_minimum", metric=spec.metric,
        decision=decide_p(p_holds, p_refuted, one_sided_level(spec.confidence)),
        effect=effect, ci_low=low, ci_high=high, threshold=spec.min_effect, summary=summary,
        detail=jsonable(detail), p_holds=p_holds, p_refuted=p_refuted,
        level=one_sided_level(spec.confidence),
    )
