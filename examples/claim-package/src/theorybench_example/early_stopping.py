"""Early stopping on noisy, over-parameterized linear regression.

Claim (Ali, Kolter, Tibshirani, "A Continuous-Time View of Early Stopping for Least Squares
Regression", AISTATS 2019, Sec. 3 and Fig. 1; Hastie, Montanari, Rosset, Tibshirani, "Surprises
in High-Dimensional Ridgeless Least Squares Interpolation", Ann. Stat. 2022, Sec. 2–3; the
optimal ridge strength from Dobriban and Wager, Ann. Stat. 2018, Thm. 2.1): for n samples in
d > n dimensions with label noise, the test risk of gradient descent (or flow) from zero first
falls, then rises towards the risk of the minimum-norm interpolator, so it has an interior
minimum along training time; with a ridge penalty of the optimal strength λ* = σ²d/(n r²) it
does not.

Why λ* removes it (gradient flow, Σ = I, β* uniform on the sphere of radius r): in the eigenbasis
(s_i, v_i) of Σ̂ the coefficient is b_i f_i(t) with f_i = 1 − e^{−t(s_i+λ)} increasing from 0 to
1 and b_i the ridge solution's coefficient, and d/df E(b_i f − β*_i)² ≤ 0 for all f ≤ 1 iff
E b_i² ≤ β*_i E b_i, which, averaged over the direction of β*, is σ²/n ≤ λ r²/d, i.e. λ ≥ λ*:
the expected risk is non-increasing along time exactly when λ ≥ λ* (flat at the end when
λ = λ*), and rises at the end for every λ < λ*, including λ = 0 with any label noise.

Set-up, per seed: inputs x_i ~ N(0, I_d), β* uniform on the sphere of radius ``signal``,
labels y_i = x_iᵀβ* + σε_i with ε_i ~ N(0, 1), σ = ``noise``. The method (family
``regression-path``, :mod:`theorybench_example.paths`) gives β(t) at each time t = ``lr``·step.
Measured exactly, without a test sample: the excess test risk ``risk`` = E_x (xᵀ(β(t) − β*))² =
‖β(t) − β*‖² (Σ = I), the training loss ‖y − xβ(t)‖²/(2n) and ‖β(t)‖.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
import torch
from pydantic import BaseModel, ConfigDict, Field, field_validator

from theorybench.registry import experiment, get_method, methods
from theorybench.streams import stream

DEFAULT_STEPS = [0, 1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024]


class EarlyStoppingParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    n: int = Field(40, ge=2, le=10_000, description="training samples")
    d: int = Field(60, ge=1, le=10_000, description="input dimension (d > n: over-parameterized)")
    noise: float = Field(1.0, ge=0.0, description="label noise standard deviation σ")
    signal: float = Field(1.0, gt=0.0, description="‖β*‖ = r")
    ridge: float = Field(0.0, ge=0.0, description="ridge penalty λ of the trained objective")
    method: str = Field("gd", description="a regression-path method: gd, gradient-flow")
    lr: float = Field(0.2, gt=0.0, description="step η; time t = η · step")
    steps: list[int] = Field(default_factory=lambda: list(DEFAULT_STEPS), min_length=3,
                             max_length=64, description="steps at which the risk is recorded")

    @field_validator("steps")
    @classmethod
    def _increasing(cls, value: list[int]) -> list[int]:
        if any(b <= a for a, b in zip(value, value[1:], strict=False)) or value[0] < 0:
            raise ValueError("steps must be non-negative and strictly increasing")
        return value

    @field_validator("method")
    @classmethod
    def _known(cls, value: str) -> str:
        known = methods("regression-path")
        if value not in known:
            raise ValueError(f"unknown regression-path method {value!r}; known: {sorted(known)}")
        return value


def _problem(p: EarlyStoppingParams, seeds: Sequence[int]
             ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per seed, from its own generator: inputs (S, n, d), labels (S, n), β* (S, d)."""
    xs, ys, betas = [], [], []
    for seed in seeds:
        g = stream(seed, "regression-data")
        beta = torch.randn(p.d, generator=g, dtype=torch.float64)
        beta = p.signal * beta / beta.norm()
        x = torch.randn(p.n, p.d, generator=g, dtype=torch.float64)
        eps = torch.randn(p.n, generator=g, dtype=torch.float64)
        xs.append(x)
        ys.append(x @ beta + p.noise * eps)
        betas.append(beta)
    return torch.stack(xs), torch.stack(ys), torch.stack(betas)


@experiment(
    "early_stopping_regression",
    family="early_stopping",
    params=EarlyStoppingParams,
    columns=("step", "time", "risk", "train_loss", "norm"),
    example={"n": 6, "d": 9, "steps": [0, 1, 4, 16]},
    cost=lambda p: float(max(p.steps)) * p.n * p.d,
)
def early_stopping_regression(p: EarlyStoppingParams, seeds: Sequence[int],
                              device: torch.device) -> pd.DataFrame:
    """Rows per (seed, recorded step): the step, the time η·step, the excess test risk
    ‖β(t) − β*‖², the training loss and ‖β(t)‖ of the spec's method."""
    seeds = tuple(seeds)
    path = get_method("regression-path", p.method)
    x, y, beta_star = (t.to(device) for t in _problem(p, seeds))
    times = [p.lr * k for k in p.steps]
    betas = path(x, y, p.ridge, p.lr, times)  # (S, T, d)
    risk = ((betas - beta_star.unsqueeze(-2)) ** 2).sum(-1)
    resid = y.unsqueeze(-2) - betas @ x.transpose(-1, -2)  # (S, T, n)
    train = (resid ** 2).sum(-1) / (2 * p.n)
    norm = betas.norm(dim=-1)
    rows = []
    for i, seed in enumerate(seeds):
        for j, (k, t) in enumerate(zip(p.steps, times, strict=True)):
            rows.append({"seed": seed, "step": k, "time": t, "risk": float(risk[i, j]),
                         "train_loss": float(train[i, j]), "norm": float(norm[i, j])})
    return pd.DataFrame(rows)
