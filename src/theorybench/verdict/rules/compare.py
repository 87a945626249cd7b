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

Interval and p-values: the Student-t test of ``mean_s d_s`` against the threshold, ``T =
(d̄ − threshold) / (s / √n)`` on ``n − 1`` degrees of freedom, interval ``d̄ ± t_{1−α/2, n−1} s /
√n`` (clipped to ``bounds``, e.g. [−1, 1] for a difference of two fractions). When every seed
gives the same difference (``s = 0``, e.g. one arm converges on every trajectory and the other
never), the t interval would have zero width; the rule then uses the sign test on how many seeds
lie on the claimed side (effect = that fraction, Clopper–Pearson interval, threshold ½; 6 seeds
needed at confidence 0.95).

Decision: ``a_greater``: holds when ``a − b > margin`` (``p_holds = P(t_{n−1} ≥ T)``);
``a_less``: holds when ``a − b < −margin``, i.e. ``b − a > margin``. A negative margin states
non-inferiority ("``a`` is not worse than ``b`` by more than ``|margin|``").

Calibration (``docs/calibration.md``; confidence 0.95, nominal 0.025, 4000 tables per row; 3–16
seeds, normal, Student t₃ and integer-rounded noise, a seed effect shared by the arms): worst
measured rate of ``holds`` at ``a − b = margin`` 0.029 ± 0.003 (normal noise, 4 seeds: within
Monte-Carlo error of the exact 0.025); power at a true difference one SD of the paired
difference beyond the margin: 0.10–0.21 (3 seeds), 0.41–0.65 (6), 0.61–0.78 (8), 0.94–0.97 (16).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd
from pydantic import Field

from theorybench.registry import rule
from theorybench.verdict.base import RuleError, RuleResult, RuleSpec, Scalar, decide_p, select
from theorybench.verdict.stats import (
    SIGN_TEST_FALLBACK,
    clip,
    fmt,
    jsonable,
    level_words,
    one_sided_level,
    require_seeds,
    side_test,
    where_words,
)

if TYPE_CHECKING:
    from theorybench.leaderboard.figures import FigureRequest


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
    bounds: tuple[float | None, float | None] | None = Field(
        None, description="range of the difference (e.g. [-1, 1]); intervals are clipped to it"
    )


def _arm(rows: pd.DataFrame, spec: CompareSpec, value: Scalar, keys: list[str]) -> pd.Series:
    arm = rows[rows[spec.by] == value]
    if arm.empty:
        known = sorted(map(str, rows[spec.by].unique()))
        raise RuleError(f"no rows with {spec.by} == {value!r}; values are {known}")
    return arm.groupby(keys)[spec.metric].mean()



def describe(fields: dict[str, Any]) -> str:
    """The spec in words."""
    metric, by, a, b = fields.get("metric"), fields.get("by"), fields.get("a"), fields.get("b")
    margin = float(fields.get("margin", 0.0))
    diff = f"{metric}({by} = {a}) − {metric}({by} = {b})"
    if fields.get("relative"):
        diff = f"({diff}) / |{metric}({by} = {b})|"
    side = f"< {fmt(-margin)}" if fields.get("direction") == "a_less" else f"> {fmt(margin)}"
    return (f"paired over seeds{where_words(fields.get('where') or {})}, {diff} {side}: the "
            f"{level_words(fields)} Student-t interval of the mean per-seed difference must lie "
            "on that side (holds) or entirely on the other (refuted)" + SIGN_TEST_FALLBACK)


def figure(request: FigureRequest) -> str | None:
    """The methods ranking: the metric's mean per value of ``by``, per arm (a figure and a
    table), the two compared values highlighted."""
    from theorybench.leaderboard.figures import RANKING_CAPTION, ranking_figure, ranking_tables

    fields = request.rule.fields
    by = fields.get("by")
    if not by:
        return "no figure: the rule names no `by` column"
    request.caption = RANKING_CAPTION
    request.rankings = ranking_tables(request, str(by))
    highlight = {str(fields.get("a")), str(fields.get("b"))}
    return request.draw(["compare", *request.rows_key("by", "a", "b")],
                        lambda _path: ranking_figure(request, str(by), highlight))


@rule(CompareSpec, describe=describe, figure=figure)
def compare(spec: CompareSpec, table: pd.DataFrame, rng: np.random.Generator) -> RuleResult:
    """Mean paired difference ``a − b`` over seeds, t test (sign test when seeds agree)."""
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
    if spec.direction == "a_greater":
        threshold, word = spec.margin, ">"
    else:
        threshold, word = -spec.margin, "<"
    above = spec.direction == "a_greater"
    test = side_test(per_seed.to_numpy(dtype=float), threshold, above, spec.confidence)
    effect, low, high = float(test["effect"]), float(test["low"]), float(test["high"])
    p_holds, p_refuted = float(test["p_holds"]), float(test["p_refuted"])
    level = one_sided_level(spec.confidence)
    decision = decide_p(p_holds, p_refuted, level)
    unit = " (relative)" if spec.relative else ""
    difference = f"{spec.metric}({spec.by}={spec.a}) - {spec.metric}({spec.by}={spec.b}){unit}"
    if bool(test["sign"]):
        interval = "sign test: every seed gives the same difference (clopper-pearson)"
        summary = (
            f"{difference} = {fmt(float(per_seed.iloc[0]))} on every one of {len(per_seed)} "
            f"seeds: fraction {word} {fmt(threshold)} = {fmt(effect)} [{fmt(low)}, {fmt(high)}] "
            f"(sign test)"
        )
        threshold = 0.5
    else:
        low, high = clip(low, spec.bounds), clip(high, spec.bounds)
        interval = "student-t over per-seed paired differences"
        summary = (
            f"{difference} = {fmt(effect)} [{fmt(low)}, {fmt(high)}] paired over "
            f"{len(per_seed)} seeds, claimed {word} {fmt(threshold)}"
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
                "interval": interval,
                "mean_a": paired["a"].mean(),
                "mean_b": paired["b"].mean(),
                "n_pairs": len(paired),
                "seeds": per_seed.index,
                "seed_diff": per_seed.to_numpy(),
                "n_seeds": len(per_seed),
            }
        ),
        p_holds=p_holds,
        p_refuted=p_refuted,
        level=level,
    )
