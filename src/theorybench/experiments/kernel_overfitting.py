"""Benign, tempered and catastrophic overfitting of kernel regression as n grows at fixed d.

Claim (Mallinar, Simon, Abedsoltan, Pandit, Belkin, Nakkiran, "Benign, tempered, or catastrophic:
toward a refined taxonomy of overfitting", NeurIPS 2022, its kernel-regression part; the seeds'
slides "Beyond benign overfitting"): with the input dimension d fixed and label noise of variance
σ², as n → ∞ the excess risk R(f̂) − σ² = E_x (f̂(x) − f*(x))² of

* ridgeless (minimum-norm interpolating) Laplace-kernel regression tends to a constant multiple
  of σ² (*tempered*): kernels with power-law spectra λ_k ∝ k^(−α) have, in the eigenlearning
  framework the paper uses (Gaussian-design ansatz), the ridgeless noise
  amplification E₀ → α, hence excess risk → (α − 1) σ²; the Laplace kernel in intrinsic
  dimension d has α = 1 + 1/d, so excess/σ² → 1/d (1/3 at d = 3);
* ridgeless Gaussian-kernel regression diverges (*catastrophic*): its spectrum decays
  exponentially and E₀ → ∞;
* kernel ridge regression with a ridge tuned to n is consistent (*benign*): excess risk → 0.

Set-up (kind ``kernel_overfitting``). x uniform on [0, 1]ᵈ, target f*(x) = Σ_j sin(2π x_j) / √(d/2)
(mean 0, variance 1), labels y = f*(x) + σ z with z ~ N(0, 1). Every seed draws the largest sample
(x, then ``draws`` noise vectors z, one after the other, so that fewer draws are a prefix of more;
stream ``kernel_overfitting/data``) and a test set (``kernel_overfitting/test``) once; the sample of
size n is its first n points (nested in n), and the noise levels σ² share the same z, so every size,
noise level, kernel and ridge of a seed sees the same draws (the three tasks are compared on the
same data). Kernels k(x, x') = exp(−‖x − x'‖/ℓ) (Laplace) or exp(−‖x − x'‖²/(2ℓ²)) (Gaussian), K the
n × n Gram matrix. The estimator is f̂(x) = k(x)ᵀ a with

    ridgeless:  a = K⁻¹ y        (the minimum-norm interpolant; K is positive definite),
    ridge λ:    a = (K + nλ I)⁻¹ y,

λ either ``ridge_value`` (fixed) or tuned per (seed, n, σ², noise vector) by exact leave-one-out
over the grid ``ridge_grid`` (LOO residual (y_i − ŷ_i)/(1 − H_ii), H = K (K + nλI)⁻¹, from one
eigendecomposition of K). Without tuning f̂ is linear in y, so one solve with the right-hand sides
f*(X) and the noise vectors z gives every σ².

Numerical breakdown is kept apart from catastrophic overfitting: ridgeless systems are solved by a
Cholesky factorization in float64; the columns ``log10_cond`` (log₁₀ of the condition number of the
solved matrix: LAPACK's 1-norm estimate from the Cholesky factor, ``dpocon``; with a tuned ridge the
2-norm one of K from its eigenvalues) and ``residual`` (max over the right-hand sides of ‖K a −
y‖/‖y‖) say how accurate each solve is, and the bandwidth and the sizes are chosen so that cond(K)
stays below 10¹² (cond · ε_machine < 10⁻⁴) at the largest n. When the Cholesky factorization fails
the row gets ``residual`` = inf (a diverged measurement, never a risk).

Rows: one per (seed, n, σ²) with ``excess`` (the test mean of (f̂ − f*)² over ``n_test`` points),
``ratio`` = excess/σ² (NaN at σ² = 0), ``bias`` (the excess of the noiseless fit, σ = 0),
``train_mse`` (mean of (f̂(x_i) − y_i)² on the training points: 0 for an interpolant),
``ridge_used`` (with a tuned ridge the geometric mean over the noise vectors), ``log10_cond``,
``residual``, ``log_n``, and per (seed, σ²) the least-squares slope ``exponent`` of ln excess on ln
n over the sizes n ≥ ``fit_from`` (the same number on every row of that seed and σ²): > 0 when the
excess grows with n, ≈ 0 when it levels off, < 0 when it vanishes."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
import pandas as pd
import torch
from pydantic import BaseModel, ConfigDict, Field, model_validator

from theorybench.registry import experiment
from theorybench.streams import stream


class KernelOverfittingParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kernel: Literal["laplace", "gaussian"] = Field("laplace", description="k(x, x')")
    bandwidth: float = Field(0.5, gt=0, description="ℓ")
    ridge: Literal["ridgeless", "tuned", "fixed"] = Field(
        "ridgeless", description="minimum-norm interpolation, LOO-tuned ridge, or ridge_value")
    ridge_value: float = Field(1e-3, gt=0, description="λ of ridge: fixed ((K + nλI)⁻¹)")
    ridge_grid: list[float] = Field(
        [10.0 ** (-k / 2) for k in range(0, 19)], min_length=1,
        description="λ values searched by leave-one-out (ridge: tuned)")
    d: int = Field(3, ge=1, description="input dimension")
    sizes: list[int] = Field([100, 200, 400, 800], min_length=2, description="n (nested)")
    noise: list[float] = Field([0.0, 0.1, 0.3, 1.0], min_length=1,
                               description="label-noise variances σ²")
    n_test: int = Field(1000, ge=1)
    draws: int = Field(8, ge=1, description="independent label-noise vectors z per seed")
    fit_from: int = Field(0, ge=0, description="smallest n in the exponent fit")

    @model_validator(mode="after")
    def _check(self) -> KernelOverfittingParams:
        if sorted(set(self.sizes)) != self.sizes:
            raise ValueError("sizes must increase")
        if len([n for n in self.sizes if n >= self.fit_from]) < 2:
            raise ValueError("the exponent fit needs at least two sizes n ≥ fit_from")
        if any(s < 0 for s in self.noise) or len(set(self.noise)) != len(self.noise):
            raise ValueError("noise: distinct variances ≥ 0")
        return self


def target(x: np.ndarray) -> np.ndarray:
    """f*(x) = Σ_j sin(2π x_j)/√(d/2): mean 0 and variance 1 under the uniform measure."""
    return np.sin(2 * np.pi * x).sum(1) / np.sqrt(x.shape[1] / 2)


def distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Euclidean distance matrix between the rows of ``a`` and ``b``."""
    d2 = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2 * a @ b.T
    return np.sqrt(np.maximum(d2, 0.0))


def gram(kernel: str, bandwidth: float, dist: np.ndarray) -> np.ndarray:
    """k applied to a distance matrix."""
    if kernel == "laplace":
        return np.exp(-dist / bandwidth)
    return np.exp(-(dist * dist) / (2 * bandwidth * bandwidth))


def loo_ridge(s: np.ndarray, u: np.ndarray, y: np.ndarray, grid: Sequence[float]) -> np.ndarray:
    """For each column of ``y`` (n × R), the λ of ``grid`` with the least leave-one-out squared
    error of ridge regression (K + nλI)⁻¹, from the eigendecomposition K = U diag(s) Uᵀ: the
    LOO residual of point i is (y_i − ŷ_i)/(1 − H_ii), H = U diag(s/(s + nλ)) Uᵀ."""
    n = len(y)
    uy = u.T @ y
    u2 = u * u
    errors = []
    for lam in grid:
        shrink = s / (s + n * lam)
        fitted = u @ (shrink[:, None] * uy)
        leverage = u2 @ shrink
        errors.append((((y - fitted) / (1 - leverage)[:, None]) ** 2).mean(0))
    return np.asarray(grid, float)[np.argmin(np.stack(errors), axis=0)]


def exponent(sizes: Sequence[int], values: Sequence[float]) -> float:
    """Least-squares slope of ln value against ln n."""
    x, y = np.log(np.asarray(sizes, float)), np.log(np.asarray(values, float))
    xc = x - x.mean()
    return float((xc * (y - y.mean())).sum() / (xc * xc).sum())


def solve(p: KernelOverfittingParams, k: np.ndarray, rhs: np.ndarray
          ) -> tuple[np.ndarray, list[float], float, float]:
    """Coefficients a (n × columns of ``rhs``) of the estimator, the ridge used for each
    column, log₁₀ of the condition number of the solved matrix, and the relative residual."""
    n = len(k)
    if p.ridge == "tuned":
        s, u = np.linalg.eigh(k)
        log10_cond = float(np.log10(s[-1] / s[0])) if s[0] > 0 else np.inf
        used = [float(v) for v in loo_ridge(s, u, rhs, p.ridge_grid)]
        a = u @ ((u.T @ rhs) / (s[:, None] + n * np.asarray(used)[None, :]))
        fit = k @ a + n * np.asarray(used)[None, :] * a
        residual = float(np.max(np.linalg.norm(fit - rhs, axis=0)
                                / np.maximum(np.linalg.norm(rhs, axis=0), 1e-300)))
        return a, used, log10_cond, residual
    import scipy.linalg as sl  # on use: importing it takes a fifth of a second

    lam = 0.0 if p.ridge == "ridgeless" else p.ridge_value
    m = k + n * lam * np.eye(n)
    try:
        factor = sl.cho_factor(m, lower=True)
    except np.linalg.LinAlgError:
        return np.full(rhs.shape, np.nan), [lam] * rhs.shape[1], np.inf, np.inf
    a = sl.cho_solve(factor, rhs)
    rcond, _ = sl.lapack.dpocon(factor[0], float(np.abs(m).sum(0).max()), uplo="L")
    log10_cond = float(-np.log10(rcond)) if rcond > 0 else np.inf
    residual = float(np.max(np.linalg.norm(m @ a - rhs, axis=0) / np.linalg.norm(rhs, axis=0)))
    return a, [lam] * rhs.shape[1], log10_cond, residual


def fit_size(p: KernelOverfittingParams, x: np.ndarray, z: np.ndarray,
             x_test: np.ndarray) -> list[dict[str, float]]:
    """The rows of one training size n = len(x) (``z``: n × draws): one per noise level."""
    n, draws = z.shape
    f_train, f_test = target(x), target(x_test)
    k = gram(p.kernel, p.bandwidth, distances(x, x))
    k_test = gram(p.kernel, p.bandwidth, distances(x_test, x))
    if p.ridge == "tuned":  # the ridge depends on the labels: one column per (σ², draw)
        sigmas = np.sqrt(np.repeat(np.asarray(p.noise, float), draws))
        rhs = np.concatenate([f_train[:, None], f_train[:, None] + np.tile(z, len(p.noise))
                              * sigmas[None, :]], axis=1)
        a, used, log10_cond, residual = solve(p, k, rhs)
        pred_test = k_test @ a
        err = ((pred_test - f_test[:, None]) ** 2).mean(0)
        train = ((k @ a - rhs) ** 2).mean(0)
        bias = float(err[0])
        excess = err[1:].reshape(len(p.noise), draws).mean(1)
        train_mse = train[1:].reshape(len(p.noise), draws).mean(1)
        ridge_used = np.exp(np.log(used[1:]).reshape(len(p.noise), draws).mean(1))
    else:  # linear in the labels: f* and the draws of z, then every σ²
        a, used, log10_cond, residual = solve(p, k, np.concatenate([f_train[:, None], z], 1))
        pred_f, pred_z = k_test @ a[:, :1], k_test @ a[:, 1:]
        train_f, train_z = k @ a[:, :1] - f_train[:, None], k @ a[:, 1:] - z
        bias = float(((pred_f[:, 0] - f_test) ** 2).mean())
        excess, train_mse = [], []
        for var in p.noise:
            sd = np.sqrt(var)
            excess.append(float(((pred_f - f_test[:, None] + sd * pred_z) ** 2).mean()))
            train_mse.append(float(((train_f + sd * train_z) ** 2).mean()))
        ridge_used = [used[0]] * len(p.noise)
    return [{"n": n, "noise": float(var), "excess": float(excess[i]),
             "ratio": float(excess[i] / var) if var > 0 else np.nan, "bias": bias,
             "train_mse": float(train_mse[i]), "ridge_used": float(ridge_used[i]),
             "log10_cond": log10_cond, "residual": residual}
            for i, var in enumerate(p.noise)]


@experiment(
    "kernel_overfitting",
    family="overfitting",
    params=KernelOverfittingParams,
    columns=("n", "log_n", "noise", "excess", "ratio", "exponent", "bias", "train_mse",
             "ridge_used", "log10_cond", "residual"),
    example={"sizes": [20, 40], "n_test": 50, "noise": [0.0, 1.0], "draws": 2},
    cost=lambda p: float(sum(n * n * (p.n_test / 100 + p.draws / 4 + (
        n / 30 + p.draws * len(p.noise) / 2 if p.ridge == "tuned" else 0)) for n in p.sizes)),
)
def kernel_overfitting(p: KernelOverfittingParams, seeds: Sequence[int],
                       device: torch.device) -> pd.DataFrame:
    """One row per (seed, n, σ²): the excess test risk of the kernel estimator of the module
    docstring (CPU, float64; ``device`` is not used)."""
    n_max = max(p.sizes)
    tables = []
    for seed in seeds:
        gen = stream(seed, "kernel_overfitting/data")
        x_all = torch.rand(n_max, p.d, generator=gen, dtype=torch.float64).numpy()
        z_all = torch.randn(p.draws, n_max, generator=gen, dtype=torch.float64).numpy().T
        x_test = torch.rand(p.n_test, p.d, generator=stream(seed, "kernel_overfitting/test"),
                            dtype=torch.float64).numpy()
        rows = [r for n in p.sizes for r in fit_size(p, x_all[:n], z_all[:n], x_test)]
        table = pd.DataFrame(rows)
        table.insert(0, "seed", seed)
        table.insert(2, "log_n", np.log(table["n"].to_numpy(float)))
        fitted = table[table.n >= p.fit_from]
        slopes = {var: exponent(g.n.tolist(), g.excess.tolist())
                  for var, g in fitted.groupby("noise")}
        table["exponent"] = table["noise"].map(slopes)
        tables.append(table)
    return pd.concat(tables, ignore_index=True)
