"""``compare``: one arm of the table beats another, paired over seeds.

Claim: rows with ``by == a`` have a smaller (``direction: a_less``) or larger (``a_greater``)
metric than rows with ``by == b``, by more than ``margin``.

Effect: the rows of each arm are averaged within each key ``(seed, *pair_on)``; keys present in
both arms are paired, and the difference per key is

    d = y_a − y_b                 (relative: false)
    d = (y_a − y_b) / |y_b|       (relative: true)

averaged over the key's other columns to one ``d_s`` per seed (common random numbers make the
pairing remove the seed-to-seed variation both arms share). The effect is ``mean_s d_s``, in
metric units (or as a fraction of ``b``).

Interval: Student-t over the per-seed ``d_s``.

Decision: ``a_greater``: ``decide(low, high, margin, "above")``, i.e. ``a − b > margin``;
``a_less``: ``decide(low, high, −margin, "below")``, i.e. ``b − a > margin``. A negative margin
states non-inferiority ("``a`` is not worse than ``b`` by more than ``|margin|``").
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd
from pydantic import Field

from theorybench.registry import rule
from theorybench.verdict.base import RuleError, RuleResult, RuleSpec, Scalar, decide, select
from theorybench.verdict.stats import fmt, jsonable, require_seeds, t_interval


class CompareSpec(RuleSpec):
    rule: Literal["compare"]
    by: str = Field(description="column naming the arms (e.g. method)")
    a: Scalar = Field(description="value of `by` for the arm the claim is about")
    b: Scalar = Field(description="value of `by` for the arm it is compared with")
    direction: Literal["a_less", "a_greater"] = Field(
        description="a_less: metric(a) < metric(b) - margin; a_greater: metric(a) > metric(b) "
        "+ margin"
    )
    margin: float = Field(
        0.0, description="required gap, in metric units (or a fraction of b when relative)"
    )
    relative: bool = Field(False, description="compare (a - b) / |b| instead of a - b")
    pair_on: list[str] = Field(
        default_factory=list,
        description="columns besides seed that identify paired rows (e.g. step, eps)",
    )


def _arm(rows: pd.DataFrame, spec: CompareSpec, value: Scalar, keys: list[str]) -> pd.Series:
    arm = rows[rows[spec.by] == value]
    if arm.empty:
        known = sorted(map(str, rows[spec.by].unique()))
        raise RuleError(f"no rows with {spec.by} == {value!r}; values are {known}")
    return arm.groupby(keys)[spec.metric].mean()


@rule(CompareSpec)
def compare(spec: CompareSpec, table: pd.DataFrame, rng: np.random.Generator) -> RuleResult:
    """Mean paired difference ``a − b`` over seeds, t interval."""
    keys = ["seed", *spec.pair_on]
    rows = select(table, spec, spec.by, *keys)
    rows = rows.assign(**{spec.metric: rows[spec.metric].astype(float)})
    paired = pd.concat(
        {"a": _arm(rows, spec, spec.a, keys), "b": _arm(rows, spec, spec.b, keys)}, axis=1
    ).dropna()
    diff = paired["a"] - paired["b"]
    if spec.relative:
        if (paired["b"] == 0).any():
            raise RuleError(f"relative compare divides by {spec.metric!r} of b, which is 0")
        diff = diff / paired["b"].abs()
    per_seed = diff.groupby(level="seed").mean()
    require_seeds(per_seed.index, spec)
    effect, low, high = (float(v) for v in t_interval(per_seed.to_numpy(), spec.confidence))
    if spec.direction == "a_greater":
        threshold, side, word = spec.margin, "above", ">"
    else:
        threshold, side, word = -spec.margin, "below", "<"
    decision = decide(low, high, threshold, side)
    unit = " (relative)" if spec.relative else ""
    summary = (
        f"{spec.metric}({spec.by}={spec.a}) - {spec.metric}({spec.by}={spec.b}){unit} = "
        f"{fmt(effect)} [{fmt(low)}, {fmt(high)}] paired over {len(per_seed)} seeds, "
        f"claimed {word} {fmt(threshold)}"
    )
    return RuleResult(
        rule="compare",
        metric=spec.metric,
        decision=decision,
        effect=effect,
        ci_low=low,
        ci_high=high,
        threshold=threshold,
        summary=summary,
        detail=jsonable(
            {
                "by": spec.by,
                "a": spec.a,
                "b": spec.b,
                "direction": spec.direction,
                "relative": spec.relative,
                "interval": "student-t over per-seed paired differences",
                "mean_a": paired["a"].mean(),
                "mean_b": paired["b"].mean(),
                "n_pairs": len(paired),
                "seeds": per_seed.index,
                "seed_diff": per_seed.to_numpy(),
                "n_seeds": len(per_seed),
            }
        ),
    )
