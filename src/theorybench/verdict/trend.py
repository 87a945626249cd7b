"""``trend``: the metric moves monotonically with a swept parameter.

Claim: along the column ``along`` the metric increases (or decreases).

Effect: for each seed ``s``, average the metric over rows sharing a level ``x`` of ``along``
(``ȳ_s(x)``), and take Kendall's τ_b between the levels and ``ȳ_s``::

    τ_s = Σ_{i,j} sign(x_i − x_j) sign(ȳ_s(x_i) − ȳ_s(x_j)) / √(#untied x pairs · #untied ȳ pairs)

(a seed whose metric is flat across levels has ``τ_s = 0``). The effect is ``±mean_s τ_s``, with
the sign flipped for ``direction: decreasing``, so positive always means "in the claimed
direction"; it lies in [−1, 1] and 1 means every seed is perfectly monotone.

Interval: Student-t over the per-seed ``τ_s``. The ``τ_s`` are independent across seeds and
bounded, so their mean is close to normal already for a handful of seeds, and the t interval is
exact for normal data, where percentile bootstraps are too narrow with 3–10 seeds. Measured
one-sided rate of ``holds`` under a no-trend null (iid normal metric) at confidence 0.95:
≈ 0.030 with 8 seeds × 5 levels, ≈ 0.025 with 16 × 5 or 3 × 10, ≈ 0.043 with 3 × 3 (there all
seeds can agree by chance, which collapses the interval): always below ``α = 0.05``, and near
``α/2`` once there are ≥ 5 seeds or ≥ 4 levels.

Decision: ``decide(low, high, min_effect, "above")``.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd
from pydantic import Field

from theorybench.registry import rule
from theorybench.verdict.base import RuleError, RuleResult, RuleSpec, decide, select
from theorybench.verdict.stats import (
    fmt,
    jsonable,
    kendall_tau,
    per_level_means,
    require_seeds,
    t_interval,
)


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
        description="the mean Kendall tau (in the claimed direction) must exceed this",
    )


@rule(TrendSpec)
def trend(spec: TrendSpec, table: pd.DataFrame, rng: np.random.Generator) -> RuleResult:
    """Mean per-seed Kendall tau of ``metric`` along ``along``, t interval over seeds."""
    rows = select(table, spec, "seed", spec.along)
    matrix = per_level_means(rows, spec.metric, spec.along)
    levels = matrix.columns.to_numpy(dtype=float)
    if len(levels) < 3:
        raise RuleError(
            f"trend along {spec.along!r} needs at least 3 distinct values, got {list(levels)}"
        )
    sign = 1.0 if spec.direction == "increasing" else -1.0
    taus = sign * kendall_tau(levels, matrix.to_numpy(dtype=float))
    usable = ~np.isnan(taus)
    seeds = matrix.index[usable]
    require_seeds(seeds, spec)
    effect, low, high = (float(v) for v in t_interval(taus[usable], spec.confidence))
    decision = decide(low, high, spec.min_effect, "above")
    summary = (
        f"Kendall tau of {spec.metric} along {spec.along} ({spec.direction}) = {fmt(effect)} "
        f"[{fmt(low)}, {fmt(high)}] over {len(seeds)} seeds, claimed > {fmt(spec.min_effect)}"
    )
    return RuleResult(
        rule="trend",
        metric=spec.metric,
        decision=decision,
        effect=effect,
        ci_low=low,
        ci_high=high,
        threshold=spec.min_effect,
        summary=summary,
        detail=jsonable(
            {
                "along": spec.along,
                "direction": spec.direction,
                "interval": "student-t over per-seed Kendall tau",
                "levels": levels,
                "level_mean": matrix.mean(axis=0).to_numpy(),
                "level_sd": matrix.std(axis=0, ddof=1).to_numpy(),
                "seeds": seeds,
                "seed_tau": taus[usable],
                "n_seeds": len(seeds),
            }
        ),
    )
