"""Slow convergence of empirical measures in W₁: the curse of dimensionality of sampling.

Claim (the seeds' Theorem "Slow convergence of empirical measures in 1-Wasserstein", citing
Weed & Bach, "Sharp asymptotic and finite-sample rates of convergence of empirical measures in
Wasserstein distance", Bernoulli 25(4A) 2019, and Fournier & Guillin, "On the rate of convergence
in Wasserstein distance of the empirical measure", PTRF 162, 2015): for μ on ℝᵖ with p ≥ 3 and
μ̂_n its empirical measure of n i.i.d. points,

    E W₁(μ, μ̂_n) ≍ n^(−1/p)        (p ≥ 3;  n^(−1/2) for p = 1,  n^(−1/2) √log n for p = 2),

the upper bound for any μ with enough moments (Fournier & Guillin, Thm 1), the lower bound for μ
with a density (e.g. uniform on [0, 1]ᵖ). Weed & Bach's refinement: the exponent follows the
*intrinsic* (upper Wasserstein) dimension of μ, not the ambient p, and at finite n the rate can
differ from the asymptotic one (multi-scale behaviour).

Measured quantity (kind ``wasserstein_rate``). For each n of ``sizes`` and each of ``reps``
replicates, two independent n-samples X, Y of μ and the exact optimal transport cost between
their empirical measures,

    W₁(μ̂_n, ν̂_n) = min_{π permutation} (1/n) Σ_i ‖X_i − Y_π(i)‖₂,

an assignment problem solved exactly by ``scipy.optimize.linear_sum_assignment`` (for uniform
weights on n points each, an optimal plan is a permutation: Birkhoff–von Neumann); for one
dimension, by sorting (the monotone matching is optimal). The two-sample distance has the same
rate as W₁(μ, μ̂_n): by the triangle inequality E W₁(μ̂_n, ν̂_n) ≤ 2 E W₁(μ, μ̂_n), and by
convexity of W₁ in its second argument (E ν̂_n = μ) E W₁(μ̂_n, ν̂_n) ≥ E W₁(μ̂_n, μ).

The measure μ: uniform on [0, 1]ᵖ (``measure: uniform``), the standard Gaussian on ℝᵖ
(``gaussian``), or, with ``intrinsic: k < p``, the image of the uniform measure on [0, 1]ᵏ
under a fixed smooth curved embedding φ: [0, 1]ᵏ → ℝᵖ, φ(u) = sin(Wu + b)/√(p/2) with W (p × k)
of N(0, ``curvature``²) entries and b uniform in [0, 2π) (drawn once from the stream of seed 0,
``empirical_measures/manifold``: the same μ for every seed). A flat (linear) embedding would
be an isometry and give the k-dimensional distances exactly; the curved one does not.

Rows: one per (seed, n), with ``w1`` (the mean over the replicates), ``log_n``, and per seed the
least-squares slope ``exponent`` of ln w1 against ln n over the sizes n ≥ ``fit_from`` (the
same number on every row of the seed), the predicted exponents −1/max(p, 2) (``predicted``,
ambient) and −1/max(k, 2) (``predicted_intrinsic``), and their ratios ``ratio`` = exponent /
predicted and ``ratio_intrinsic`` (1 = the predicted rate; > 1 faster, < 1 slower). For p = 2
the predicted exponent −1/2 ignores the √log n factor. Each seed's samples come from its own
``empirical_measures/samples`` stream alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
import pandas as pd
import torch
from pydantic import BaseModel, ConfigDict, Field, model_validator

from theorybench.registry import experiment
from theorybench.streams import stream


class WassersteinRateParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    measure: Literal["uniform", "gaussian"] = Field(
        "uniform", description="uniform on [0, 1]^p (or [0, 1]^k before the embedding), or N(0, I)")
    p: int = Field(3, ge=1, description="ambient dimension")
    intrinsic: int | None = Field(
        None, ge=1, description="k < p: μ is uniform on [0, 1]^k embedded by a curved map in ℝ^p")
    curvature: float = Field(3.0, gt=0, description="SD of the embedding's frequencies W")
    sizes: list[int] = Field([32, 64, 128, 256, 512], min_length=2,
                             description="sample sizes n (a log grid)")
    reps: int = Field(1, ge=1, description="replicate pairs of samples at the largest n")
    fit_from: int = Field(0, ge=0, description="smallest n in the exponent fit")

    @model_validator(mode="after")
    def _check(self) -> WassersteinRateParams:
        if self.intrinsic is not None and self.intrinsic >= self.p:
            raise ValueError("intrinsic must be below p (leave it out for the full-dimensional μ)")
        if self.intrinsic is not None and self.measure != "uniform":
            raise ValueError("the embedded measure is the uniform one on [0, 1]^k")
        if len([n for n in self.sizes if n >= self.fit_from]) < 2:
            raise ValueError("the exponent fit needs at least two sizes n ≥ fit_from")
        if sorted(set(self.sizes)) != self.sizes:
            raise ValueError("sizes must increase")
        return self


def replicates(p: WassersteinRateParams, n: int) -> int:
    """Replicates at size n: ``reps`` at the largest n, more at smaller n (∝ n_max / n, capped
    at 32 ``reps``), so that every size costs about as much; in one dimension (sorting, cheap)
    32 ``reps`` at every n."""
    if p.p == 1:
        return 32 * p.reps
    return int(min(32 * p.reps, max(p.reps, p.reps * max(p.sizes) // n)))


def w1_exact(x: np.ndarray, y: np.ndarray) -> float:
    """W₁ between the empirical measures of the rows of ``x`` and ``y`` (n points each, uniform
    weights): the optimal assignment's mean Euclidean cost; by sorting in one dimension."""
    if x.shape[1] == 1:
        return float(np.abs(np.sort(x[:, 0]) - np.sort(y[:, 0])).mean())
    from scipy.optimize import linear_sum_assignment  # on use: half a second to import
    from scipy.spatial.distance import cdist

    cost = cdist(x, y)
    rows, cols = linear_sum_assignment(cost)
    return float(cost[rows, cols].mean())


def embedding(p: WassersteinRateParams) -> tuple[np.ndarray, np.ndarray] | None:
    """The curved embedding's (W, b), the same for every seed (seed-0 stream), or None."""
    if p.intrinsic is None:
        return None
    gen = stream(0, "empirical_measures/manifold")
    w = p.curvature * torch.randn(p.p, p.intrinsic, generator=gen, dtype=torch.float64)
    b = 2 * np.pi * torch.rand(p.p, generator=gen, dtype=torch.float64)
    return w.numpy(), b.numpy()


def sample(p: WassersteinRateParams, n: int, frame: tuple[np.ndarray, np.ndarray] | None,
           gen: torch.Generator) -> np.ndarray:
    """n points of μ (see the module docstring)."""
    if frame is not None:
        w, b = frame
        u = torch.rand(n, p.intrinsic or 1, generator=gen, dtype=torch.float64).numpy()
        return np.sin(u @ w.T + b) / np.sqrt(p.p / 2)
    if p.measure == "gaussian":
        return torch.randn(n, p.p, generator=gen, dtype=torch.float64).numpy()
    return torch.rand(n, p.p, generator=gen, dtype=torch.float64).numpy()


def fitted_exponent(sizes: Sequence[int], w: Sequence[float]) -> float:
    """Least-squares slope of ln w against ln n."""
    x, y = np.log(np.asarray(sizes, float)), np.log(np.asarray(w, float))
    xc = x - x.mean()
    return float((xc * (y - y.mean())).sum() / (xc * xc).sum())


def predicted_exponent(dim: int) -> float:
    """−1/dim for dim ≥ 3; −1/2 for dim 1 and 2 (up to √log n at dim 2)."""
    return -1.0 / max(dim, 2)


@experiment(
    "wasserstein_rate",
    family="empirical_measures",
    params=WassersteinRateParams,
    columns=("n", "log_n", "w1", "exponent", "predicted", "predicted_intrinsic", "ratio",
             "ratio_intrinsic"),
    example={"p": 3, "sizes": [8, 16, 32]},
    cost=lambda p: float(sum(replicates(p, n) * n * n for n in p.sizes)),
)
def wasserstein_rate(p: WassersteinRateParams, seeds: Sequence[int],
                     device: torch.device) -> pd.DataFrame:
    """One row per (seed, n): two-sample W₁ and the seed's fitted exponent in n (CPU, float64;
    ``device`` is not used)."""
    frame = embedding(p)
    predicted = predicted_exponent(p.p)
    predicted_k = predicted_exponent(p.intrinsic or p.p)
    tables = []
    for seed in seeds:
        gen = stream(seed, "empirical_measures/samples")
        w1 = [float(np.mean([w1_exact(sample(p, n, frame, gen), sample(p, n, frame, gen))
                             for _ in range(replicates(p, n))])) for n in p.sizes]
        fit = [(n, w) for n, w in zip(p.sizes, w1, strict=True) if n >= p.fit_from]
        exponent = fitted_exponent([n for n, _ in fit], [w for _, w in fit])
        tables.append(pd.DataFrame({
            "seed": seed,
            "n": p.sizes,
            "log_n": np.log(p.sizes),
            "w1": w1,
            "exponent": exponent,
            "predicted": predicted,
            "predicted_intrinsic": predicted_k,
            "ratio": exponent / predicted,
            "ratio_intrinsic": exponent / predicted_k,
        }))
    return pd.concat(tables, ignore_index=True)
