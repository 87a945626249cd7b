"""``threshold``: the metric's mean over seeds lies above or below a value.

Claim: ``E[metric] < value`` (``op: "<"``) or ``E[metric] > value`` (``op: ">"``).

Effect: each seed's rows are reduced to one number ``y_s`` (``per_seed``: their mean, max, min,
or the row with the largest ``order_by``, e.g. the last step); the effect is ``mean_s y_s``.

Interval: Student-t over the per-seed ``y_s``.

Decision: ``decide(low, high, value, "below")`` for ``<``, ``"above"`` for ``>``.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd
from pydantic import Field

from theorybench.registry import rule
from theorybench.verdict.base import RuleResult, RuleSpec, decide, select
from theorybench.verdict.stats import fmt, jsonable, numeric_column, require_seeds, t_interval


class ThresholdSpec(RuleSpec):
    rule: Literal["threshold"]
    op: Literal["<", ">"] = Field(description="the claimed side of `value`")
    value: float = Field(description="the threshold the mean over seeds is compared with")
    per_seed: Literal["mean", "max", "min", "last"] = Field(
        "mean", description="how a seed's rows are reduced to one number before the interval"
    )
    order_by: str = Field("step", description="column whose largest value is `last`")


@rule(ThresholdSpec)
def threshold(spec: ThresholdSpec, table: pd.DataFrame, rng: np.random.Generator) -> RuleResult:
    """Mean over seeds of the per-seed reduced metric, t interval, against ``value``."""
    extra = [spec.order_by] if spec.per_seed == "last" else []
    rows = select(table, spec, "seed", *extra)
    values = rows[spec.metric].astype(float)
    if spec.per_seed == "last":
        order = numeric_column(rows, spec.order_by)
        last = order.groupby(rows["seed"]).transform("max")
        per_seed = values[order == last].groupby(rows["seed"][order == last]).mean()
    else:
        per_seed = values.groupby(rows["seed"]).agg(spec.per_seed)
    require_seeds(per_seed.index, spec)
    effect, low, high = (float(v) for v in t_interval(per_seed.to_numpy(), spec.confidence))
    decision = decide(low, high, spec.value, "below" if spec.op == "<" else "above")
    summary = (
        f"{spec.per_seed} {spec.metric} per seed, averaged = {fmt(effect)} "
        f"[{fmt(low)}, {fmt(high)}] over {len(per_seed)} seeds, claimed {spec.op} {fmt(spec.value)}"
    )
    return RuleResult(
        rule="threshold",
        metric=spec.metric,
        decision=decision,
        effect=effect,
        ci_low=low,
        ci_high=high,
        threshold=spec.value,
        summary=summary,
        detail=jsonable(
            {
                "op": spec.op,
                "per_seed": spec.per_seed,
                "interval": "student-t over per-seed values",
                "seeds": per_seed.index,
                "seed_value": per_seed.to_numpy(),
                "n_seeds": len(per_seed),
            }
        ),
    )
