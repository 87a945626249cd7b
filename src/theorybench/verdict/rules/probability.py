"""``probability``: an event happens with probability above or below a value.

Claim: ``P(event) > value`` (``op: ">"``) or ``P(event) < value`` (``op: "<"``), where the
metric is a 0/1 (or boolean) column with one row per independent trial (a trajectory, a restart,
an attack); e.g. "at least 90% of trajectories end on the spurious cycle".

Effect: the fraction ``p̂ = k / n`` of the ``n`` selected rows whose metric is 1.

Interval: exact Clopper–Pearson ``[Beta⁻¹(α/2; k, n − k + 1), Beta⁻¹(1 − α/2; k + 1, n − k)]``
(coverage at least ``confidence`` for every true ``p``, so ``holds`` never comes out more often
than ``(1 − confidence) / 2`` when ``p = value``; inside [0, 1] and never of zero width). The
Wilson score interval is not offered: its one-sided error exceeds the nominal level for ``p``
near 0 or 1, which is where these claims live (``value`` 0.9, 0.95). The rows are taken as
independent trials: when several trials share a seed (one network, many starts) and the seeds
matter, reduce to one row per seed first.

P-values: the exact binomial tails ``P(Bin(n, value) ≥ k)`` (evidence for ``p > value``) and
``P(Bin(n, value) ≤ k)`` (for ``p < value``); ``p_holds`` is the tail on the claimed side,
``p_refuted`` the other one.

Decision: ``decide_p(p_holds, p_refuted, (1 − confidence)/2)``, equal to the interval decision
``decide(low, high, value, "above")`` for ``>`` (``"below"`` for ``<``).

Calibration (``docs/calibration.md``; confidence 0.95, nominal 0.025, 4000 tables per row; 3–16
seeds × 8 0/1 trajectories, ``value`` 0.5, 0.9, 0.95, both ``op``): worst measured rate of
``holds`` at ``p = value`` 0.027 ± 0.003 (the exact rate is ≤ 0.025 by construction); power at
``p = value + ¾ (1 − value)`` for ``>``: 0 where 8n trials cannot clear ``value`` (e.g. 0.95 with
≤ 8 seeds), up to 1.00; at ``p = value / 4`` for ``<``: 0.97–1.00.
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
    level_words,
    one_sided_level,
    proportion_test,
    where_words,
)

if TYPE_CHECKING:
    from theorybench.leaderboard.figures import FigureRequest


class ProbabilitySpec(RuleSpec):
    rule: Literal["probability"]
    op: Literal["<", ">"] = Field(description="the claimed side of `value`")
    value: float = Field(ge=0.0, le=1.0, description="probability the fraction is compared with")
    interval: Literal["clopper-pearson"] = Field(
        "clopper-pearson", description="interval for the binomial proportion (exact)"
    )



def describe(fields: dict[str, Any]) -> str:
    """The spec in words."""
    return (f"the fraction of trials with {fields.get('metric')} = 1"
            f"{where_words(fields.get('where') or {})} is {fields.get('op')} "
            f"{fmt(fields.get('value'))} ({level_words(fields)} Clopper–Pearson interval on the "
            "pooled trials).")


def figure(request: FigureRequest) -> str | None:
    """Per arm: the fraction of trials with its interval, and the claimed value."""
    from theorybench.leaderboard.figures import VALUES_CAPTION, values_figure

    rule = request.rule
    request.caption = VALUES_CAPTION
    return request.draw(["probability", request.index], lambda _path: values_figure(
        request, on_axis=lambda _r: True, off_axis_label=lambda _r: "", axis_note=
        "(fraction of trials)",
        claimed=f"claimed {rule.fields.get('op', '')} {rule.fields.get('value')}"))


@rule(ProbabilitySpec, describe=describe, figure=figure)
def probability(spec: ProbabilitySpec, table: pd.DataFrame, rng: np.random.Generator) -> RuleResult:
    """Fraction of rows where the 0/1 metric is 1, with a binomial interval."""
    rows = select(table, spec)
    values = rows[spec.metric].astype(float).to_numpy()
    if not np.isin(values, [0.0, 1.0]).all():
        odd = sorted(set(values[~np.isin(values, [0.0, 1.0])].tolist()))[:5]
        raise RuleError(f"probability needs a 0/1 metric; {spec.metric!r} has values {odd}")
    n, k = len(values), int(values.sum())
    effect = k / n
    test = proportion_test(k, k, n, spec.value, spec.confidence)
    low, high = float(test["low"]), float(test["high"])
    up, down = float(test["p_above"]), float(test["p_below"])
    p_holds, p_refuted = (up, down) if spec.op == ">" else (down, up)
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
