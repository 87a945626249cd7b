"""``degree``: the metric is a polynomial of bounded degree in a variable.

Claim: along ``along`` (``h``) the metric is a polynomial of degree at most ``max_degree`` (N),
e.g. a trained degree-N polynomial net extrapolates as a degree-≤N function of h (N = 1 for
"linear", as for ReLU MLPs far from the data).

Effect: for each seed (and, when ``group`` is set, each group within the seed, such as a
direction id), the fitted degree

    γ = min { d ∈ 0..D : RMS(y − p̂_d(h)) ≤ tolerance · RMS(y − ȳ) }

where ``p̂_d`` is the least-squares polynomial of degree ``d`` (a Chebyshev series on ``h``
mapped to [−1, 1], for conditioning) and ``D = min(max_fit_degree, #distinct h − 2)`` so that
every tested fit keeps at least one residual degree of freedom (otherwise degree ``#h − 1``
interpolates anything). A fit also counts as exact when its residual RMS is at most ``atol``
(metric units; use it when the metric is nearly constant, where the relative residual compares
with noise alone) or below ``1e-9 · max |y|`` (round-off on constant or exact data). When no
``d ≤ D`` fits, ``γ = D + 1`` ("more than D"). A seed's degree is the largest over its groups
(a bound must hold in every direction). The effect is the mean of γ over seeds.

The claim is a **bound**, so it is tested on the fraction of seeds that violate it, not on a mean
degree (a mean of 3.1 can hide one seed of 8 at degree 4). With ``V = #{s: γ_s > N}`` of ``n``
seeds, the effect is ``V / n`` and the interval is Clopper–Pearson ``[Beta⁻¹(α/2; V, n − V + 1),
Beta⁻¹(1 − α/2; V + 1, n − V)]``. The claim holds when the upper bound is below the spec's
``violation_tolerance`` (``p_holds = P(Bin(n, tol) ≤ V)``) and is refuted when the lower bound
is above it (``p_refuted = P(Bin(n, tol) ≥ V)``). With no violation, holding needs ``n > ln(α/2)
/ ln(1 − tol)`` seeds: at confidence 0.95, 6 seeds for tol 0.5, 8 for 0.4, 13 for 0.25, 17 for
0.2; one violating seed of 8 never holds below tol 0.53.

Decision: ``decide_p(p_holds, p_refuted, (1 − confidence)/2)``, equal to the interval decision
against ``violation_tolerance``.

Calibration (``docs/calibration.md``; confidence 0.95, nominal 0.025, 4000 tables per row; 3–16
seeds, curves of degree N = 3 on 9 points with a degree-4 term on each seed with probability
exactly ``violation_tolerance`` (0.25, 0.4, 0.5), normal, Student t₃ and rounded noise): worst
measured rate of ``holds`` 0.020 ± 0.002 (exact binomial); power with every seed of degree ≤ N:
1 when ``n`` exceeds the minimum above, 0 below it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd
from pydantic import Field, model_validator

from theorybench.registry import rule
from theorybench.verdict.base import RuleError, RuleResult, RuleSpec, decide_p, select
from theorybench.verdict.stats import (
    fmt,
    jsonable,
    level_words,
    numeric_column,
    one_sided_level,
    proportion_test,
    require_seeds,
    where_words,
)

ROUND_OFF = 1e-9


if TYPE_CHECKING:
    from theorybench.leaderboard.figures import FigureRequest


class DegreeSpec(RuleSpec):
    rule: Literal["degree"]
    along: str = Field(description="the input variable h the metric is a polynomial of")
    max_degree: int = Field(ge=0, description="the claimed bound N on the degree")
    tolerance: float = Field(
        0.01,
        gt=0.0,
        lt=1.0,
        description="a fit is exact when its residual RMS is at most this fraction of the RMS "
        "of the centred metric",
    )
    atol: float = Field(
        0.0, ge=0.0, description="a fit is also exact when its residual RMS is at most this"
    )
    max_fit_degree: int = Field(10, ge=1, le=30, description="highest degree tried")
    group: str | None = Field(
        None, description="column splitting each seed into separate curves (e.g. direction)"
    )
    violation_tolerance: float = Field(
        gt=0.0,
        lt=1.0,
        description="the largest fraction of seeds whose fitted degree may exceed max_degree",
    )

    @model_validator(mode="after")
    def _fit_beyond_bound(self) -> DegreeSpec:
        if self.max_fit_degree < self.max_degree:
            raise ValueError("max_fit_degree must be at least max_degree to test the bound")
        return self


def fitted_degrees(
    h: np.ndarray, y: np.ndarray, tolerance: float, top: int, atol: float = 0.0
) -> tuple[np.ndarray, np.ndarray]:
    """Smallest degree ``d ≤ top`` whose least-squares fit of each curve (last axis of ``y``,
    all sampled at ``h``) is exact to ``tolerance`` or ``atol`` (else ``top + 1``), and the
    relative residual of every degree ``0..top`` (shape ``(..., top + 1)``)."""
    y = np.asarray(y, dtype=float)
    t = 2 * (h - h.min()) / (h.max() - h.min()) - 1 if h.max() > h.min() else h - h
    basis = np.polynomial.chebyshev.chebvander(t, top)
    centred = np.sqrt(np.mean((y - y.mean(axis=-1, keepdims=True)) ** 2, axis=-1))
    floor = np.maximum(atol, ROUND_OFF * np.max(np.abs(y), axis=-1))
    rms = []
    for d in range(top + 1):
        q, _ = np.linalg.qr(basis[:, : d + 1])
        residual = y - (y @ q) @ q.T
        rms.append(np.sqrt(np.mean(residual**2, axis=-1)))
    rms_all = np.stack(rms, axis=-1)
    exact = (rms_all <= tolerance * centred[..., None]) | (rms_all <= floor[..., None])
    gamma = np.where(exact.any(axis=-1), np.argmax(exact, axis=-1), top + 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        relative = np.where(centred[..., None] > 0, rms_all / centred[..., None], 0.0)
    return gamma, relative


def fitted_degree(
    h: np.ndarray, y: np.ndarray, tolerance: float, top: int, atol: float = 0.0
) -> tuple[int, list[float]]:
    """:func:`fitted_degrees` of one curve: its degree and relative residuals as Python numbers."""
    gamma, relative = fitted_degrees(h, y, tolerance, top, atol)
    return int(gamma), [float(r) for r in relative]


def bound_violations(
    gammas: np.ndarray, max_degree: int, tolerance: float, confidence: float
) -> dict[str, np.ndarray]:
    """Exact binomial test of the fraction of seeds (last axis) with degree above the bound."""
    k = (np.asarray(gammas) > max_degree).sum(axis=-1)
    n = np.shape(gammas)[-1]
    out = proportion_test(k, k, n, tolerance, confidence)
    out["effect"], out["violations"] = k / n, k
    out["p_holds"], out["p_refuted"] = out["p_below"], out["p_above"]
    return out



def describe(fields: dict[str, Any]) -> str:
    """The spec in words."""
    group = f", separately for each {fields.get('group')}" if fields.get("group") else ""
    bound = fields.get("max_degree")
    return (f"{fields.get('metric')} is a polynomial of degree at most {bound} in "
            f"{fields.get('along')}{where_words(fields.get('where') or {})}{group} on all but a "
            f"fraction {fmt(fields.get('violation_tolerance'))} of seeds: a seed violates the "
            "bound when its fitted degree (the smallest whose residual RMS is at most "
            f"{fmt(fields.get('tolerance', 0.01))} of the centred RMS) exceeds {bound}; the "
            f"{level_words(fields)} Clopper–Pearson interval of the violating fraction must lie "
            "below the tolerance (holds) or above it (refuted).")


def figure(request: FigureRequest) -> str | None:
    """The metric along ``along`` per arm, with the claimed degree bound in the legend."""
    from theorybench.leaderboard.figures import along_figure

    bound = request.rule.fields.get("max_degree")
    return along_figure(request, ["degree", bound], lambda ax: ax.plot(
        [], [], ls="", label=f"claimed: degree ≤ {bound}"))


@rule(DegreeSpec, describe=describe, figure=figure)
def degree(spec: DegreeSpec, table: pd.DataFrame, rng: np.random.Generator) -> RuleResult:
    """Fraction of seeds whose smallest exact polynomial degree exceeds the bound, exact test."""
    extra = [spec.group] if spec.group else []
    rows = select(table, spec, "seed", spec.along, *extra)
    rows = rows.assign(_h=numeric_column(rows, spec.along), _y=rows[spec.metric].astype(float))
    units = ["seed", spec.group] if spec.group else ["seed"]
    gammas: dict[object, int] = {}
    residuals: list[list[float]] = []
    tested = []
    for key, curve in rows.groupby(units):
        seed = key[0]
        distinct = curve["_h"].nunique()
        if distinct < spec.max_degree + 2:
            raise RuleError(
                f"degree needs at least max_degree + 2 = {spec.max_degree + 2} distinct "
                f"{spec.along!r} values per curve to tell degree <= {spec.max_degree} from more; "
                f"seed {seed} has {distinct}"
            )
        top = min(spec.max_fit_degree, distinct - 2)
        h, y = curve["_h"].to_numpy(), curve["_y"].to_numpy()
        gamma, res = fitted_degree(h, y, spec.tolerance, top, spec.atol)
        gammas[seed] = max(gamma, gammas.get(seed, 0))
        residuals.append(res)
        tested.append(top)
    seeds = list(gammas)
    require_seeds(seeds, spec)
    gamma = np.array([gammas[s] for s in seeds], dtype=int)
    test = bound_violations(gamma, spec.max_degree, spec.violation_tolerance, spec.confidence)
    effect, low, high = float(test["effect"]), float(test["low"]), float(test["high"])
    p_holds, p_refuted = float(test["p_holds"]), float(test["p_refuted"])
    level = one_sided_level(spec.confidence)
    values, counts = np.unique(gamma, return_counts=True)
    summary = (
        f"{int(test['violations'])}/{len(seeds)} seeds fit {spec.metric} in {spec.along} only "
        f"with degree > {spec.max_degree} (tolerance {fmt(spec.tolerance)}; degrees "
        f"{dict(zip(values.tolist(), counts.tolist(), strict=True))}): violating fraction "
        f"{fmt(effect)} [{fmt(low)}, {fmt(high)}], claimed < {fmt(spec.violation_tolerance)}"
    )
    return RuleResult(
        rule="degree",
        metric=spec.metric,
        decision=decide_p(p_holds, p_refuted, level),
        effect=effect,
        ci_low=low,
        ci_high=high,
        threshold=spec.violation_tolerance,
        summary=summary,
        detail=jsonable(
            {
                "along": spec.along,
                "max_degree": spec.max_degree,
                "tolerance": spec.tolerance,
                "violation_tolerance": spec.violation_tolerance,
                "interval": "clopper-pearson on the fraction of seeds above max_degree",
                "mean_degree": float(gamma.mean()),
                "seeds": seeds,
                "seed_degree": gamma,
                "degree_counts": {int(v): int(c) for v, c in zip(values, counts, strict=True)},
                "max_degree_tested": min(tested),
                "n_curves": len(residuals),
                "relative_residual_by_degree": [
                    float(np.median([r[d] for r in residuals])) for d in range(min(tested) + 1)
                ],
                "n_seeds": len(seeds),
            }
        ),
        p_holds=p_holds,
        p_refuted=p_refuted,
        level=level,
    )
