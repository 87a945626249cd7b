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

Interval: percentile bootstrap over seeds (γ is discrete; when every seed agrees the interval is
that single value).

Decision: ``decide(low, high, max_degree + 0.5, "below")``: holds when the interval lies below
N + ½ (γ ≤ N), refuted when it lies above (γ > N).
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd
from numpy.polynomial import Chebyshev
from pydantic import Field, model_validator

from theorybench.registry import rule
from theorybench.verdict.base import RuleError, RuleResult, RuleSpec, decide, select
from theorybench.verdict.stats import (
    bootstrap_rows,
    fmt,
    jsonable,
    numeric_column,
    percentile_interval,
    require_seeds,
)

ROUND_OFF = 1e-9


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
    n_boot: int = Field(2000, ge=200, description="bootstrap resamples over seeds")

    @model_validator(mode="after")
    def _fit_beyond_bound(self) -> DegreeSpec:
        if self.max_fit_degree < self.max_degree:
            raise ValueError("max_fit_degree must be at least max_degree to test the bound")
        return self


def fitted_degree(
    h: np.ndarray, y: np.ndarray, tolerance: float, top: int, atol: float = 0.0
) -> tuple[int, list[float]]:
    """Smallest degree ``d ≤ top`` whose least-squares fit is exact to ``tolerance`` or ``atol``
    (else ``top + 1``), and the relative residual of every degree ``0..top``."""
    centred = float(np.sqrt(np.mean((y - y.mean()) ** 2)))
    floor = max(atol, ROUND_OFF * float(np.max(np.abs(y))))
    rms = [float(np.sqrt(np.mean((y - Chebyshev.fit(h, y, d)(h)) ** 2))) for d in range(top + 1)]
    exact = [d for d, r in enumerate(rms) if r <= tolerance * centred or r <= floor]
    relative = [r / centred if centred > 0 else 0.0 for r in rms]
    return (exact[0] if exact else top + 1), relative


@rule(DegreeSpec)
def degree(spec: DegreeSpec, table: pd.DataFrame, rng: np.random.Generator) -> RuleResult:
    """Mean over seeds of the smallest exact polynomial degree, bootstrap interval."""
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
    gamma = np.array([gammas[s] for s in seeds], dtype=float)
    boot = gamma[bootstrap_rows(rng, len(gamma), spec.n_boot)].mean(axis=1)
    low, high = percentile_interval(boot, spec.confidence)
    effect = float(gamma.mean())
    bound = spec.max_degree + 0.5
    decision = decide(low, high, bound, "below")
    values, counts = np.unique(gamma.astype(int), return_counts=True)
    summary = (
        f"fitted polynomial degree of {spec.metric} in {spec.along} = {fmt(effect)} "
        f"[{fmt(low)}, {fmt(high)}] over {len(seeds)} seeds (tolerance {fmt(spec.tolerance)}), "
        f"claimed <= {spec.max_degree}"
    )
    return RuleResult(
        rule="degree",
        metric=spec.metric,
        decision=decision,
        effect=effect,
        ci_low=low,
        ci_high=high,
        threshold=bound,
        summary=summary,
        detail=jsonable(
            {
                "along": spec.along,
                "max_degree": spec.max_degree,
                "tolerance": spec.tolerance,
                "interval": "percentile bootstrap over seeds",
                "seeds": seeds,
                "seed_degree": gamma.astype(int),
                "degree_counts": {int(v): int(c) for v, c in zip(values, counts, strict=True)},
                "max_degree_tested": min(tested),
                "n_curves": len(residuals),
                "relative_residual_by_degree": [
                    float(np.median([r[d] for r in residuals])) for d in range(min(tested) + 1)
                ],
                "n_seeds": len(seeds),
            }
        ),
    )
