"""``probability``: an event happens with probability above or below a value.

Claim: ``P(event) > value`` (``op: ">"``) or ``P(event) < value`` (``op: "<"``), where the
metric is a 0/1 (or boolean) column with one row per independent trial (a trajectory, a restart,
an attack); e.g. "at least 90% of trajectories end on the spurious cycle".

Effect: the fraction ``p̂ = k / n`` of the ``n`` selected rows whose metric is 1.

Interval: exact Clopper–Pearson by default (coverage at least ``confidence`` for every true
``p``, so ``holds`` never comes out more often than ``(1 − confidence) / 2`` when ``p = value``);
``interval: wilson`` gives the shorter Wilson score interval, whose coverage is only close to
nominal on average. The rows are taken as independent trials: when several trials share a seed
(one network, many starts) and the seeds matter, reduce to one row per seed first.

Decision: ``decide(low, high, value, "above")`` for ``>``, ``"below"`` for ``<``.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd
from pydantic import Field

from theorybench.registry import rule
from theorybench.verdict.base import RuleError, RuleResult, RuleSpec, decide, select
from theorybench.verdict.stats import clopper_pearson, fmt, wilson


class ProbabilitySpec(RuleSpec):
    rule: Literal["probability"]
    op: Literal["<", ">"] = Field(description="the claimed side of `value`")
    value: float = Field(ge=0.0, le=1.0, description="probability the fraction is compared with")
    interval: Literal["clopper-pearson", "wilson"] = Field(
        "clopper-pearson", description="interval for the binomial proportion"
    )


@rule(ProbabilitySpec)
def probability(spec: ProbabilitySpec, table: pd.DataFrame, rng: np.random.Generator) -> RuleResult:
    """Fraction of rows where the 0/1 metric is 1, with a binomial interval."""
    rows = select(table, spec)
    values = rows[spec.metric].astype(float).to_numpy()
    if not np.isin(values, [0.0, 1.0]).all():
        odd = sorted(set(values[~np.isin(values, [0.0, 1.0])].tolist()))[:5]
        raise RuleError(f"probability needs a 0/1 metric; {spec.metric!r} has values {odd}")
    n, k = len(values), int(values.sum())
    effect = k / n
    interval = clopper_pearson if spec.interval == "clopper-pearson" else wilson
    low, high = interval(k, n, spec.confidence)
    decision = decide(low, high, spec.value, "above" if spec.op == ">" else "below")
    summary = (
        f"P({spec.metric}) = {k}/{n} = {fmt(effect)} [{fmt(low)}, {fmt(high)}] "
        f"({spec.interval}), claimed {spec.op} {fmt(spec.value)}"
    )
    return RuleResult(
        rule="probability",
        metric=spec.metric,
        decision=decision,
        effect=effect,
        ci_low=low,
        ci_high=high,
        threshold=spec.value,
        summary=summary,
        detail={"op": spec.op, "interval": spec.interval, "successes": k, "trials": n},
    )
