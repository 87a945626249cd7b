"""Random-features double descent, its bias-variance decomposition, and SGD on the same model.

Claims:

* Belkin, Hsu, Ma, Mandal, "Reconciling modern machine-learning practice and the classical
  bias-variance trade-off", PNAS 2019: the test risk of the minimum-norm least-squares fit of a
  random-features model, as a function of the number of features m, peaks at the interpolation
  threshold m = n and descends beyond it.
* Liu, Suykens, Cevher, "On the double descent of random features models trained with SGD",
  NeurIPS 2022: averaging over the random features, the bias decreases monotonically in m/n and
  the variance is unimodal with its peak near m = n; constant-step SGD from zero reaches the
  error of the minimum-norm solution.
* Nakkiran, Venkat, Kakade, Ma, "Optimal regularization can mitigate double descent", ICLR 2021:
  a tuned ridge penalty removes the peak (a negative control).

Model: features ``φ(a) = √(2/m) cos(Wa/σ + b)`` (random Fourier features of the Gaussian kernel,
``W ~ N(0, I)``, ``b ~ U[0, 2π]``, ``σ`` the median pairwise distance of the training inputs) or
``φ(a) = √(2/m) relu(Wa/σ)``; predictor ``f(a) = φ(a)ᵀc``. Fits, for a training matrix ``Φ``
(n × m) and noisy targets ``y``:

* minimum norm: ``c = Φ⁺ y`` (``torch.linalg.pinv``, in float64);
* ridge: ``c_λ = argmin (1/n)‖Φc − y‖² + λ‖c‖² = V diag(s/(s² + nλ)) Uᵀ y`` from one SVD
  ``Φ = U diag(s) Vᵀ``; ``ridge: tuned`` picks λ on a held-out validation split per draw;
* SGD: ``c ← c − (η/B) Φ_Bᵀ(Φ_B c − y_B)`` over shuffled mini-batches, constant ``η``, from
  ``c = 0`` (or from ``c ~ N(0, init_scale² I)``).

Bias and variance over the random features, for one data set (a seed) and ``D`` feature draws
with test predictions ``f_d`` and clean test targets ``y*``, per test point averaged:
``f̄ = mean_d f_d``, ``variance = mean_t Σ_d (f_d − f̄)² / (D − 1)``,
``bias2 = mean_t (f̄ − y*)² − variance / D`` (unbiased for ``(E_W f − y*)²``), so that
``test_error = mean_{d,t} (f_d − y*)² = bias2 + variance``.

Seeds and feature draws are batched as the leading tensor dimensions (S, D) of every tensor.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Literal

import pandas as pd
import torch
from pydantic import BaseModel, ConfigDict, Field

from theorybench.data.digits import load_digits_tensors
from theorybench.data.mnist1d import load_mnist1d_tensors
from theorybench.data.synthetic import teacher_regression
from theorybench.data.torchvision_local import load_local
from theorybench.registry import experiment
from theorybench.splits import epoch_orders, minibatches, random_split
from theorybench.streams import stream, streams

DTYPE = torch.float64
RIDGE_GRID = (-8.0, 1.0, 28)
"""λ values tried by ``ridge: tuned`` (objective (1/n)‖Φc − y‖² + λ‖c‖², features of unit
norm): ``torch.logspace(*RIDGE_GRID)``, 28 values from 1e-8 to 10."""


class RFData(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Literal["digits", "mnist1d", "synthetic", "mnist"] = Field(
        "digits", description="scikit-learn digits, MNIST-1D (generated locally), a synthetic "
        "teacher, or local MNIST"
    )
    pair: tuple[int, int] = Field((3, 7), description="digit classes with targets +1 / -1")
    n_train: int = Field(100, ge=2, description="training points n")
    n_val: int = Field(60, ge=1, description="validation points (ridge tuning)")
    n_test: int = Field(200, ge=1, description="test points")
    label_noise: float = Field(
        0.5, ge=0, description="sd of Gaussian noise added to training and validation targets"
    )
    dim: int = Field(20, ge=1, description="input dimension of the synthetic teacher")


class RFParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    data: RFData = Field(default_factory=RFData)
    data_root: str | None = Field(None, description="torchvision folder holding MNIST "
                                  "(data.name: mnist)", json_schema_extra={"data_root": True})
    ratio: float = Field(1.0, gt=0, description="m/n, the number of features over n_train")
    features: Literal["fourier", "relu"] = "fourier"
    draws: int = Field(10, ge=2, description="feature draws per seed (bias/variance)")
    ridge: float | Literal["tuned"] = Field(
        0.0, description="0: minimum-norm fit; λ > 0: ridge; 'tuned': λ chosen on validation"
    )


@dataclass(frozen=True)
class Split:
    """One data set per seed, stacked: inputs (S, n, p), targets (S, n)."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    y_train_clean: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor  # clean targets

    def to(self, device: torch.device) -> Split:
        return Split(*(getattr(self, f.name).to(device) for f in fields(self)))


def _pool(d: RFData, data_root: str | None
          ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
    """Inputs and ±1 targets of the chosen pair; for MNIST (read from ``data_root``) also its
    separate test split."""
    a, b = d.pair
    if d.name in ("digits", "mnist1d"):
        x, y = load_digits_tensors() if d.name == "digits" else load_mnist1d_tensors()
        keep = (y == a) | (y == b)
        return x[keep], torch.where(y[keep] == a, 1.0, -1.0), None, None
    if not data_root:
        raise ValueError("data.name mnist is read from a local torchvision folder: set the "
                         "data_root parameter (theorybench never downloads data)")
    out = []
    for train in (True, False):
        x, y = load_local("mnist", data_root, train=train)
        keep = (y == a) | (y == b)
        out += [x[keep].flatten(1), torch.where(y[keep] == a, 1.0, -1.0)]
    return out[0], out[1], out[2], out[3]


def make_split(d: RFData, seeds: Sequence[int], data_root: str | None = None) -> Split:
    """Per seed: a random train/validation/test split (or a synthetic draw) and label noise,
    drawn from the seed's ``double_descent/data`` stream alone."""
    parts: list[list[torch.Tensor]] = [[] for _ in range(7)]
    sizes = (d.n_train, d.n_val, d.n_test)
    pool = None if d.name == "synthetic" else _pool(d, data_root)
    for seed in seeds:
        g = stream(seed, "double_descent/data")
        if pool is None:
            x, noisy, clean = teacher_regression(sum(sizes), d.dim, d.label_noise, g)
            tr, va, te = torch.split(torch.arange(sum(sizes)), sizes)
            draw = (x[tr], noisy[tr], clean[tr], x[va], noisy[va], x[te], clean[te])
        else:
            x, y, x_test_pool, y_test_pool = pool
            if x_test_pool is None:
                need = sum(sizes)
                if need > len(x):
                    raise ValueError(f"{d.name} pair {d.pair} has {len(x)} examples, "
                                     f"fewer than n_train + n_val + n_test = {need}")
                tr, va, te = random_split(len(x), sizes, g)
                xt, yt = x[te], y[te]
            else:
                tr, va = random_split(len(x), sizes[:2], g)
                (te,) = random_split(len(x_test_pool), (d.n_test,), g)
                xt, yt = x_test_pool[te], y_test_pool[te]
            noise = d.label_noise * torch.randn(d.n_train + d.n_val, generator=g)
            draw = (x[tr], y[tr] + noise[: d.n_train], y[tr], x[va], y[va] + noise[d.n_train:],
                    xt, yt)
        for part, value in zip(parts, draw, strict=True):
            part.append(value.to(DTYPE))
    return Split(*(torch.stack(p) for p in parts))


def draw_features(
    x_train: torch.Tensor, m: int, draws: int, seeds: Sequence[int]
) -> tuple[torch.Tensor, torch.Tensor]:
    """Frequencies ``W/σ`` of shape (S, D, m, p) and phases ``b`` (S, D, m); σ is each seed's
    median pairwise training distance. Drawn from each seed's ``double_descent/features``
    stream."""
    p = x_train.shape[-1]
    ws, bs = [], []
    for g in streams(seeds, "double_descent/features"):
        ws.append(torch.randn(draws, m, p, generator=g, dtype=DTYPE))
        bs.append(2 * math.pi * torch.rand(draws, m, generator=g, dtype=DTYPE))
    dist = torch.cdist(x_train, x_train)
    n = x_train.shape[-2]
    upper = torch.triu_indices(n, n, offset=1)
    sigma = dist[:, upper[0], upper[1]].median(dim=-1).values
    device = x_train.device
    return torch.stack(ws).to(device) / sigma.view(-1, 1, 1, 1), torch.stack(bs).to(device)


def featurize(
    x: torch.Tensor, w: torch.Tensor, b: torch.Tensor, features: Literal["fourier", "relu"]
) -> torch.Tensor:
    """Features of inputs ``x`` (S, n, p) under every draw: (S, D, n, m)."""
    pre = torch.einsum("snp,sdmp->sdnm", x, w)
    scale = math.sqrt(2.0 / w.shape[-2])
    if features == "fourier":
        return scale * torch.cos(pre + b.unsqueeze(-2))
    return scale * torch.relu(pre)


def min_norm_fit(phi: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """``Φ⁺ y`` for a batch of feature matrices (..., n, m) and targets (..., n): (..., m)."""
    return (torch.linalg.pinv(phi) @ y.unsqueeze(-1)).squeeze(-1)


def ridge_operator(
    phi_tr: torch.Tensor, phi_va: torch.Tensor, y_train: torch.Tensor, y_val: torch.Tensor,
    lams: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Ridge solution operator ``P_λ = V diag(s/(s² + nλ)) Uᵀ`` (S, D, m, n) from one SVD of
    ``Φ`` (S, D, n, m), at the λ of ``lams`` with the smallest validation error of
    ``Φ_val P_λ y_train`` against ``y_val``; also returns that λ (S, D)."""
    u, s, vh = torch.linalg.svd(phi_tr, full_matrices=False)
    n = phi_tr.shape[-2]
    filt = s.unsqueeze(-2) / (s.unsqueeze(-2) ** 2 + n * lams.view(-1, 1))  # (S, D, G, k)
    uty = torch.einsum("sdnk,sn->sdk", u, y_train)
    val_pred = torch.einsum("sdvk,sdgk,sdk->sdgv", phi_va @ vh.mT, filt, uty)
    best = ((val_pred - y_val.view(y_val.shape[0], 1, 1, -1)) ** 2).mean(dim=-1).argmin(dim=-1)
    chosen = filt.gather(2, best.view(*best.shape, 1, 1).expand(-1, -1, 1, filt.shape[-1]))
    return torch.einsum("sdkm,sdk,sdnk->sdmn", vh, chosen.squeeze(2), u), lams[best]


def _predict(phi: torch.Tensor, coef: torch.Tensor) -> torch.Tensor:
    return torch.einsum("...nm,...m->...n", phi, coef)


def solution_operator(
    p: RFParams, phi_tr: torch.Tensor, phi_va: torch.Tensor, data: Split
) -> tuple[torch.Tensor, torch.Tensor]:
    """The linear map ``P`` (S, D, m, n) from training targets to coefficients, and the λ used
    (S, D): ``Φ⁺`` (``torch.linalg.pinv``) for ``ridge: 0``, else the ridge operator at the
    given λ or, for ``ridge: tuned``, at the λ of :data:`RIDGE_GRID` chosen on validation."""
    if p.ridge == 0:
        return torch.linalg.pinv(phi_tr), phi_tr.new_zeros(phi_tr.shape[:2])
    grid = (torch.logspace(*RIDGE_GRID, dtype=DTYPE) if p.ridge == "tuned"
            else torch.tensor([float(p.ridge)], dtype=DTYPE))
    grid = grid.to(phi_tr.device)
    return ridge_operator(phi_tr, phi_va, data.y_train, data.y_val, grid)


def bias_variance(
    phi_te: torch.Tensor, op: torch.Tensor, y_clean: torch.Tensor, y_test: torch.Tensor,
    noise: float,
) -> dict[str, torch.Tensor]:
    """Bias² and variance over the feature draws and the label noise, per seed (S,).

    ``f_c = Φ_te P y_clean`` is the prediction averaged over the (Gaussian, sd ``noise``) label
    noise, since the fit is linear in the targets; with ``f̄ = mean_d f_c``:
    ``bias2 = mean_t (f̄ − y*)² − var_features / D``, ``var_features = mean_t var_d f_c``,
    ``var_noise = noise² · mean_d ‖Φ_te P‖_F² / t``, ``variance = var_features + var_noise``.
    """
    draws, t = phi_te.shape[1], phi_te.shape[2]
    hat = phi_te @ op  # (S, D, t, n)
    f_clean = torch.einsum("sdtn,sn->sdt", hat, y_clean)
    var_features = f_clean.var(dim=1, unbiased=True).mean(dim=-1)
    bias2 = ((f_clean.mean(dim=1) - y_test) ** 2).mean(dim=-1) - var_features / draws
    var_noise = noise**2 * (hat**2).sum(dim=(-2, -1)).mean(dim=1) / t
    return {"bias2": bias2, "variance": var_features + var_noise,
            "var_features": var_features, "var_noise": var_noise}


@experiment(
    "rf_double_descent",
    family="double_descent",
    params=RFParams,
    columns=("n_features", "test_error", "log_test_error", "risk", "bias2", "variance",
             "log_variance", "var_features", "var_noise", "train_error", "ridge_lambda"),
    example={"ratio": 1.0, "draws": 2,
             "data": {"n_train": 12, "n_val": 6, "n_test": 10}},
)
def rf_double_descent(p: RFParams, seeds: Sequence[int], device: torch.device) -> pd.DataFrame:
    """One row per seed at ``m = round(ratio · n)`` features.

    ``test_error``: mean over draws and test points of ``(f_d − y*)²`` for the fit to the noisy
    training targets (``log_test_error`` its log: at ``m = n`` its distribution over feature
    draws is heavy-tailed); ``risk = bias2 + variance``, the same error in expectation over the
    label noise; ``train_error`` on the noisy targets; ``ridge_lambda`` the mean λ (0 for the
    minimum-norm fit).
    """
    seeds = tuple(seeds)
    data = make_split(p.data, seeds, p.data_root).to(device)
    m = max(1, round(p.ratio * data.x_train.shape[-2]))
    w, b = draw_features(data.x_train, m, p.draws, seeds)
    phi_tr, phi_va, phi_te = (featurize(x, w, b, p.features)
                              for x in (data.x_train, data.x_val, data.x_test))
    op, lam = solution_operator(p, phi_tr, phi_va, data)
    coef = torch.einsum("sdmn,sn->sdm", op, data.y_train)
    test_err = ((_predict(phi_te, coef) - data.y_test.unsqueeze(1)) ** 2).mean(dim=(1, 2))
    train_err = ((_predict(phi_tr, coef) - data.y_train.unsqueeze(1)) ** 2).mean(dim=(1, 2))
    parts = bias_variance(phi_te, op, data.y_train_clean, data.y_test, p.data.label_noise)
    return pd.DataFrame({
        "seed": list(seeds),
        "n_features": m,
        "test_error": test_err.cpu().numpy(),
        "log_test_error": test_err.log().cpu().numpy(),
        "risk": (parts["bias2"] + parts["variance"]).cpu().numpy(),
        "bias2": parts["bias2"].cpu().numpy(),
        "variance": parts["variance"].cpu().numpy(),
        "log_variance": parts["variance"].log().cpu().numpy(),
        "var_features": parts["var_features"].cpu().numpy(),
        "var_noise": parts["var_noise"].cpu().numpy(),
        "train_error": train_err.cpu().numpy(),
        "ridge_lambda": lam.mean(dim=1).cpu().numpy(),
    })


class RFSGDParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    data: RFData = Field(default_factory=RFData)
    data_root: str | None = Field(None, description="torchvision folder holding MNIST "
                                  "(data.name: mnist)", json_schema_extra={"data_root": True})
    ratio: float = Field(2.0, gt=0, description="m/n")
    features: Literal["fourier", "relu"] = "fourier"
    draws: int = Field(2, ge=1, description="feature draws per seed")
    epochs: int = Field(200, ge=1, description="passes over the training set")
    batch_size: int = Field(10, ge=1)
    step: float = Field(
        0.5, gt=0, description="constant step η in units of 1/max_i ‖φ(a_i)‖²"
    )
    init_scale: float = Field(
        0.0, ge=0, description="sd of the initial coefficients (0: start at zero); features "
        "have unit norm, so the initial predictor has variance ≈ init_scale²"
    )


def sgd_fit(
    phi: torch.Tensor, y: torch.Tensor, coef: torch.Tensor, step: float, epochs: int,
    batch_size: int, orders: torch.Tensor,
) -> torch.Tensor:
    """Constant-step mini-batch SGD on ``(1/2)‖Φc − y‖²/n`` for features (S, D, n, m).

    ``orders`` (S, epochs, n) holds each seed's sample order per epoch; the step is
    ``step / max_i ‖φ_i‖²`` per (seed, draw). Returns the final coefficients (S, D, m).
    """
    lr = step / (phi**2).sum(dim=-1).amax(dim=-1, keepdim=True)  # (S, D, 1)
    s, d, n, m = phi.shape
    # rows of every (seed, draw) stacked, so a batch is one index_select of whole rows
    rows, targets = phi.reshape(s * d * n, m), y.reshape(s * d * n)
    block = (torch.arange(s * d, device=phi.device) * n).view(s, d, 1, 1)
    flat = block + orders.unsqueeze(1)  # (S, D, epochs, n): row of each epoch's k-th sample
    for epoch in range(epochs):
        for idx in minibatches(flat[:, :, epoch], batch_size):  # (S, D, B)
            pick = idx.reshape(-1)
            phi_b = rows.index_select(0, pick).view(s, d, -1, m)
            y_b = targets.index_select(0, pick).view(s, d, -1)
            # row-vector products (cᵀΦ_Bᵀ, rᵀΦ_B): far faster than matrix-vector ones here
            resid = (coef.unsqueeze(-2) @ phi_b.mT).squeeze(-2) - y_b
            grad = (resid.unsqueeze(-2) @ phi_b).squeeze(-2)
            coef = coef - lr / idx.shape[-1] * grad
    return coef


@experiment(
    "rf_sgd_vs_min_norm",
    family="double_descent",
    params=RFSGDParams,
    columns=("solver", "n_features", "test_error", "log_test_error", "train_error"),
    example={"ratio": 2.0, "draws": 1, "epochs": 2, "batch_size": 4,
             "data": {"n_train": 12, "n_val": 2, "n_test": 10}},
)
def rf_sgd_vs_min_norm(
    p: RFSGDParams, seeds: Sequence[int], device: torch.device
) -> pd.DataFrame:
    """Two rows per seed (``solver`` ∈ {min_norm, sgd}) on the same data and features: test
    error against clean targets (and its log, for locating a peak), and training error, averaged
    over the draws."""
    data = make_split(p.data, seeds, p.data_root).to(device)
    n = data.x_train.shape[-2]
    m = max(1, round(p.ratio * n))
    w, b = draw_features(data.x_train, m, p.draws, seeds)
    phi_tr = featurize(data.x_train, w, b, p.features)
    phi_te = featurize(data.x_test, w, b, p.features)
    y = data.y_train.unsqueeze(1).expand(-1, p.draws, -1)
    orders, starts = [], []
    for g in streams(seeds, "double_descent/sgd"):
        orders.append(epoch_orders([g], p.epochs, n)[0])
        starts.append(torch.randn(p.draws, m, generator=g, dtype=DTYPE))
    start = p.init_scale * torch.stack(starts).to(device)
    order = torch.stack(orders).to(device)
    fits = {
        "min_norm": min_norm_fit(phi_tr, y),
        "sgd": sgd_fit(phi_tr, y, start, p.step, p.epochs, p.batch_size, order),
    }
    rows = []
    for solver, coef in fits.items():
        test_err = ((_predict(phi_te, coef) - data.y_test.unsqueeze(1)) ** 2).mean(dim=(1, 2))
        train_err = ((_predict(phi_tr, coef) - y) ** 2).mean(dim=(1, 2))
        rows += [{"seed": seed, "solver": solver, "n_features": m,
                  "test_error": float(test_err[i]), "log_test_error": math.log(test_err[i]),
                  "train_error": float(train_err[i])}
                 for i, seed in enumerate(seeds)]
    return pd.DataFrame(rows)
