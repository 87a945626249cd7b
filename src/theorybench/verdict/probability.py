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

P-values: for Clopper–Pearson the exact binomial tails ``P(Bin(n, value) ≥ k)`` (evidence for
``p > value``) and ``P(Bin(n, value) ≤ k)`` (for ``p < value``); for Wilson the score test
``z = (p̂ − value) / √(value (1 − value) / n)`` with normal tails (the Wilson interval is its
inversion). ``p_holds`` is the tail on the claimed side, ``p_refuted`` the other one.

Decision: ``decide_p(p_holds, p_refuted, (1 − confidence)/2)``, equal to the interval decision
``decide(low, high, value, "above")`` for ``>`` (``"below"`` for ``<``).

Calibration (``docs/calibration.md``; confidence 0.95, nominal 0.025; 3–16 seeds × 8 0/1
trajectories, ``value`` 0.5, 0.9, 0.95, both ``op``): Clopper–Pearson worst measured rate of
``holds`` at ``p = value`` 0.025 (exact). Wilson is not calibrated at every ``(n, value)`` and is
kept for comparison only; specs should use the default.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd
from pydantic import Field
from scipy import stats as sps

from theorybench.registry import rule
from theorybench.verdict.base import RuleError, RuleResult, RuleSpec, decide_p, select
from theorybench.verdict.stats import fmt, one_sided_level, proportion_test, wilson


class ProbabilitySpec(RuleSpec):
    rule: Literal["probability"]
    op: Literal["<", ">"] = Field(description="the claimed side of `value`")
    value: float = Field(ge=0.0, le=1.0, description="probability the fraction is compared with")
    interval: Literal["clopper-pearson", "wilson"] = Field(
        "clopper-pearson", description="interval for the binomial proportion"
    )


def proportion_pvalues(
    k: np.ndarray | int, n: np.ndarray | int, value: float, interval: str, confidence: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(p_above, p_below, low, high)`` for ``k`` successes of ``n``, vectorised."""
    k, n = np.asarray(k, dtype=float), np.asarray(n, dtype=float)
    if interval == "clopper-pearson":
        test = proportion_test(k, k, n, value, confidence)
        return test["p_above"], test["p_below"], test["low"], test["high"]
    low, high = np.vectorize(lambda kk, nn: wilson(int(kk), int(nn), confidence))(k, n)
    if value in (0.0, 1.0):
        up = np.where(k / n > value, 0.0, 1.0)
        down = np.where(k / n < value, 0.0, 1.0)
        return up, down, low, high
    z = (k / n - value) / np.sqrt(value * (1 - value) / n)
    return sps.norm.sf(z), sps.norm.cdf(z), low, high


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
    up, down, low, high = proportion_pvalues(k, n, spec.value, spec.interval, spec.confidence)
    p_holds, p_refuted = (float(up), float(down)) if spec.op == ">" else (float(down), float(up))
    level = one_sided_level(spec.confidence)
    decision = decide_p(p_holds, p_refuted, level)
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
        p_holds=p_holds,
        p_refuted=p_refuted,
        level=level,
    )
