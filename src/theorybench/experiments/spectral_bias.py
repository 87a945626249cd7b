"""Spectral bias of coordinate MLPs, Fourier features, and the NTK's eigenvalues per frequency.

Claims. (a) Rahaman et al. ("On the spectral bias of neural networks", ICML 2019, Sec. 3 and
Fig. 1): a ReLU MLP fitted by gradient descent to a sum of sinusoids learns the low frequencies
first; within a fixed budget the high ones stay unfitted. (b) Tancik et al. ("Fourier features
let networks learn high frequency functions in low dimensional domains", NeurIPS 2020, Sec. 5-6,
Fig. 3): mapping the coordinate through random Fourier features γ(x) = [cos 2πBx, sin 2πBx],
B ~ N(0, σ²), removes the failure at a suitable scale σ, while too large a σ interpolates the
training points with high-frequency noise (test error rises). (c) Both, via the NTK (Jacot et al.
2018; Basri et al. NeurIPS 2019/2020, Cao et al. IJCAI 2021): on the squared loss, gradient
descent with step η moves the training residual as r(t+1) ≈ (I − (η/n)Θ) r(t), so the component
of r along an eigenvector of Θ decays at the rate η λ/n; on a uniform grid Θ is close to
circulant, its eigenvectors are the Fourier modes and λ_k, its eigenvalue at frequency k, decays
with k.

Set-up (kind ``spectral_bias``), per seed: the target y(x) = Σ_k a_k sin(2πkx + φ_k) on the
uniform grid x_j = j/(2n) of [0, 1), j < 2n, with random phases φ_k and amplitudes a_k = 1
(``amplitudes: equal``) or 1/k (``decaying``); the n even grid points train, the n odd ones
test (interpolation). The network (:class:`theorybench.models.supernet.Supernet`: ``depth``
hidden ReLU layers of ``width`` units, He initialization, first-layer biases N(0, 1)) reads the
coordinate 2x − 1 (``features: none``) or γ(x) with ``n_features`` frequencies B ~ N(0, σ²)
(``features: fourier``, σ = ``sigma``). Full-batch gradient descent on L = (1/2n) Σ_j (f(x_j) −
y_j)² with the step η = ``lr_scale`` · n / λ_max(Θ₀), Θ₀ the network's empirical NTK on the
training points at initialization (so every network runs at the same fraction of its stability
limit).

Measured per (seed, frequency k (``band``: ``low`` for the first of ``freqs``, ``high`` for the
last, else ``mid``), checkpoint step t; ``curve_points`` checkpoints geometric in
t): ``residual`` = |r̂_k(t)| / |ŷ_k|, with r̂_k
the discrete Fourier coefficient of the training residual f − y at frequency k; per (seed, k):
``rate``, the least-squares slope of −log(|r̂_k(t)| / |r̂_k(0)|) against t through the origin,
over the checkpoints where the relative residual is still above ``floor``; ``ntk_rate`` = η λ_k /
n with λ_k = Re(v_k* Θ₀ v_k), v_k the unit Fourier vector of frequency k on the training grid (the
eigenvalue when Θ₀ is circulant); per seed: ``slope`` and ``rank_corr``, the least-squares slope
of log ``rate`` on log ``ntk_rate`` and their Spearman ρ over the frequencies, and ``test_err``,
the relative test error ‖f − y‖² / ‖y‖² on the odd grid points at the end (one value per seed,
repeated on its rows). Seeds are batched as networks of one Supernet; each draws its phases,
features and initialization from its own ``spectral_bias/*`` streams.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import numpy as np
import pandas as pd
import torch
from pydantic import BaseModel, ConfigDict, Field

from theorybench.models.supernet import Architecture, Supernet
from theorybench.registry import experiment
from theorybench.streams import stream


class SpectralBiasParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    grid_points: int = Field(128, ge=8, description="training grid points n (and as many "
                             "test points)")
    freqs: list[int] = Field([1, 2, 4, 8, 16, 32], description="frequencies k of the target")
    amplitudes: Literal["equal", "decaying"] = Field(
        "equal", description="a_k = 1 or a_k = 1/k")
    features: Literal["none", "fourier"] = "none"
    sigma: float = Field(10.0, gt=0, description="σ of the Fourier-feature frequencies B")
    n_features: int = Field(64, ge=1, description="Fourier-feature frequencies (2× inputs)")
    width: int = Field(128, ge=1)
    depth: int = Field(3, ge=1, description="hidden ReLU layers")
    steps: int = Field(2000, ge=1, description="full-batch gradient steps")
    lr_scale: float = Field(1.0, gt=0, description="η · λ_max(Θ₀) / n")
    curve_points: int = Field(24, ge=2, description="checkpoints, geometric in the step "
                              "(step 0 and the last included)")
    floor: float = Field(0.05, gt=0, lt=1, description="relative residual below which a "
                         "frequency's checkpoints leave the rate fit")


def target(p: SpectralBiasParams, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Grid (2n,) and target (2n,) of one seed: Σ_k a_k sin(2πkx + φ_k), float64."""
    x = torch.arange(2 * p.grid_points, dtype=torch.float64) / (2 * p.grid_points)
    phases = 2 * math.pi * torch.rand(len(p.freqs), generator=gen, dtype=torch.float64)
    k = torch.tensor(p.freqs, dtype=torch.float64)
    amp = torch.ones_like(k) if p.amplitudes == "equal" else 1 / k
    y = (amp[:, None] * torch.sin(2 * math.pi * k[:, None] * x[None] + phases[:, None])).sum(0)
    return x, y


def fourier_coefficients(r: torch.Tensor, freqs: Sequence[int]) -> torch.Tensor:
    """|DFT| of the last axis (length n) at the frequencies ``freqs``: |Σ_j r_j e^{−2πikj/n}|."""
    return torch.fft.rfft(r, dim=-1)[..., list(freqs)].abs()


def fourier_rayleigh(theta: torch.Tensor, freqs: Sequence[int]) -> torch.Tensor:
    """Re(v_k* Θ v_k) for the unit Fourier vectors v_k of the grid of Θ (…, n, n): (…, K)."""
    n = theta.shape[-1]
    j = torch.arange(n, dtype=torch.float64)
    k = torch.tensor(list(freqs), dtype=torch.float64)
    v = torch.exp(2j * math.pi * k[:, None] * j[None] / n) / math.sqrt(n)       # (K, n)
    th = theta.to(torch.complex128)
    return torch.einsum("kn,...nm,km->...k", v.conj(), th, v).real


def fit_rates(rel: np.ndarray, err: np.ndarray, steps: np.ndarray, floor: float) -> np.ndarray:
    """Per row of ``err`` (…, T): the slope of −log(err/err₀) against ``steps`` through the
    origin, over the checkpoints t > 0 whose relative residual ``rel`` is above ``floor``
    (NaN when none is)."""
    y = -np.log(err[..., 1:] / err[..., :1])
    t = steps[1:].astype(float)
    keep = rel[..., 1:] > floor
    num = (np.where(keep, y * t, 0.0)).sum(-1)
    den = (np.where(keep, t * t, 0.0)).sum(-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / den, np.nan)


def loglog_slope(x: np.ndarray, y: np.ndarray) -> float:
    """Least-squares slope of log y on log x over the entries where both are positive."""
    ok = (x > 0) & (y > 0) & np.isfinite(x) & np.isfinite(y)
    if ok.sum() < 2:
        return float("nan")
    return float(np.polyfit(np.log(x[ok]), np.log(y[ok]), 1)[0])


def inputs(p: SpectralBiasParams, x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """The network's inputs at the coordinates ``x`` (m,): 2x − 1, or γ(x)."""
    if p.features == "none":
        return (2 * x - 1)[:, None]
    b = p.sigma * torch.randn(p.n_features, generator=gen, dtype=torch.float64)
    arg = 2 * math.pi * x[:, None] * b[None]
    return torch.cat([torch.cos(arg), torch.sin(arg)], dim=1)


@experiment(
    "spectral_bias",
    family="spectral_bias",
    params=SpectralBiasParams,
    columns=("freq", "band", "step", "residual", "rate", "ntk_rate", "slope", "rank_corr",
             "test_err"),
    example={"grid_points": 16, "freqs": [1, 4], "width": 8, "depth": 1, "steps": 4,
             "curve_points": 3, "n_features": 4},
    cost=lambda p: p.steps * p.grid_points * p.width * p.width * p.depth,
)
def spectral_bias(p: SpectralBiasParams, seeds: Sequence[int],
                  device: torch.device) -> pd.DataFrame:
    """One row per (seed, frequency, checkpoint) as in the module docstring (CPU, float64;
    ``device`` is not used)."""
    if max(p.freqs) >= p.grid_points // 2:
        raise ValueError("frequencies must stay below the training grid's Nyquist "
                         f"{p.grid_points // 2}")
    xs, ys = [], []
    for seed in seeds:
        x, y = target(p, stream(seed, "spectral_bias/target"))
        xs.append(inputs(p, x, stream(seed, "spectral_bias/features")))
        ys.append(y)
    a_in, y_all = torch.stack(xs), torch.stack(ys)                 # (S, 2n, d), (S, 2n)
    a_tr, a_te, y_tr, y_te = a_in[:, ::2], a_in[:, 1::2], y_all[:, ::2], y_all[:, 1::2]
    arch = Architecture(p.depth, p.width, ("relu",) * p.depth, (0,) * p.depth)
    net = Supernet([arch] * len(seeds), a_in.shape[-1], 1,
                   [stream(seed, "spectral_bias/init") for seed in seeds],
                   dtype=torch.float64, bias_std=1.0)
    params = {k: v.clone() for k, v in net.params.items()}
    theta = net.ntk(params, a_tr)                                   # (S, n, n)
    lam_max = torch.linalg.eigvalsh(theta)[:, -1]
    eta = p.lr_scale * p.grid_points / lam_max                      # (S,)
    ntk_rate = (eta[:, None] * fourier_rayleigh(theta, p.freqs) / p.grid_points).numpy()
    target_coef = fourier_coefficients(y_tr, p.freqs)              # (S, K)
    marks = set(np.unique(np.round(np.geomspace(1, p.steps, p.curve_points - 1))).astype(int))
    marks |= {0, p.steps}
    checkpoints, errs = [], []
    for step in range(p.steps + 1):
        for v in params.values():
            v.requires_grad_(True)
        f = net.forward(params, a_tr)[..., 0]
        if step in marks:
            checkpoints.append(step)
            errs.append(fourier_coefficients(f.detach() - y_tr, p.freqs))
        if step == p.steps:
            break
        loss = ((f - y_tr) ** 2).sum(1) / (2 * p.grid_points)
        grads = torch.autograd.grad(loss.sum(), list(params.values()), allow_unused=True,
                                    materialize_grads=True)
        with torch.no_grad():
            params = {k: (v - eta.view(-1, *([1] * (v.dim() - 1))) * g).detach()
                      for (k, v), g in zip(params.items(), grads, strict=True)}
    with torch.no_grad():
        f_te = net.forward(params, a_te)[..., 0]
    test_err = (((f_te - y_te) ** 2).sum(1) / (y_te**2).sum(1)).numpy()
    err = torch.stack(errs, dim=-1).numpy()                         # (S, K, T)
    rel = err / target_coef.numpy()[..., None]
    steps = np.array(checkpoints)
    rate = fit_rates(rel, err, steps, p.floor)                       # (S, K)
    from scipy.stats import spearmanr  # on use: scipy.stats takes a second to import

    rows = []
    for s, seed in enumerate(seeds):
        ok = np.isfinite(rate[s])
        slope = loglog_slope(ntk_rate[s], rate[s])
        corr = (float(np.nan_to_num(spearmanr(ntk_rate[s][ok], rate[s][ok]).statistic))
                if ok.sum() >= 3 else float("nan"))
        for i, k in enumerate(p.freqs):
            for j, t in enumerate(steps):
                band = ("low" if i == 0 else "high" if i == len(p.freqs) - 1 else "mid")
                rows.append({"seed": seed, "freq": k, "band": band, "step": int(t),
                             "residual": float(rel[s, i, j]), "rate": float(rate[s, i]),
                             "ntk_rate": float(ntk_rate[s, i]), "slope": slope,
                             "rank_corr": corr, "test_err": float(test_err[s])})
    return pd.DataFrame(rows)
