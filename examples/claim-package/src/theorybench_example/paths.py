"""Regularization paths of least squares: the methods that compete inside an early-stopping task.

Family ``regression-path``, protocol :class:`RegressionPath`. A method takes a batch of
regression problems, inputs ``x`` of shape ``(S, n, d)`` and labels ``y`` of shape ``(S, n)``,
and returns the coefficients ``β`` at each of the recorded times, shape ``(S, T, d)``, of the
training dynamics from ``β₀ = 0`` on the ridge-penalized empirical risk

    L_λ(β) = ‖y − xβ‖² / (2n) + λ‖β‖² / 2,   ∇L_λ(β) = (Σ̂ + λI)β − xᵀy/n,   Σ̂ = xᵀx/n.

Time is continuous time: ``t = η·k`` after ``k`` steps of size ``η``.

* ``gd``             full-batch gradient descent, β_{k+1} = β_k − η∇L_λ(β_k), recorded after
                     ``k = round(t/η)`` steps.
* ``gradient-flow``  the flow β̇ = −∇L_λ(β) in closed form: in the eigenbasis (s_i, v_i) of Σ̂,
                     β(t) = Σ_i (1 − e^{−t(s_i+λ)}) / (s_i + λ) · v_i v_iᵀ xᵀy/n (the factor is t
                     where s_i + λ = 0). Ali, Kolter and Tibshirani (AISTATS 2019) compare it with
                     ridge at λ = 1/t.

Adding a method is adding one function with this signature, decorated with
``@method("regression-path", "<name>")``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import torch

from theorybench.registry import method, method_family


class RegressionPath(Protocol):
    def __call__(self, x: torch.Tensor, y: torch.Tensor, ridge: float, lr: float,
                 times: Sequence[float]) -> torch.Tensor:
        """Coefficients (S, T, d) at ``times`` of the dynamics from 0 on L_λ, λ = ``ridge``."""
        ...


def check_regression_path(path: RegressionPath) -> None:
    """On a tiny batched problem: coefficients of shape (S, T, d), zero at time 0, finite, and
    close to the ridge solution (XᵀX/n + λI)⁻¹Xᵀy/n at a long time."""
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(2, 6, 3, generator=gen, dtype=torch.float64)
    y = torch.randn(2, 6, generator=gen, dtype=torch.float64)
    ridge, times = 0.5, [0.0, 0.5, 200.0]
    beta = path(x, y, ridge, 0.05, times)
    assert beta.shape == (2, 3, 3), f"coefficients of shape {tuple(beta.shape)}, not (S, T, d)"
    assert torch.isfinite(beta).all() and torch.equal(beta[:, 0], torch.zeros(2, 3,
                                                                               dtype=beta.dtype))
    gram = x.transpose(-1, -2) @ x / 6 + ridge * torch.eye(3, dtype=x.dtype)
    solution = torch.linalg.solve(gram, (x.transpose(-1, -2) @ y.unsqueeze(-1)).squeeze(-1) / 6)
    assert torch.allclose(beta[:, -1], solution, atol=1e-6), "no convergence to the ridge fit"


method_family("regression-path", RegressionPath,
              "training dynamics of penalized least squares from zero, recorded along time",
              check_regression_path)


def steps_of(times: Sequence[float], lr: float) -> list[int]:
    """The step counts at which gradient descent of step ``lr`` reaches each time."""
    return [int(round(t / lr)) for t in times]


@method("regression-path", "gd")
def gradient_descent(x: torch.Tensor, y: torch.Tensor, ridge: float, lr: float,
                     times: Sequence[float]) -> torch.Tensor:
    """Full-batch gradient descent of step ``lr`` (batched over the leading dimension)."""
    n = x.shape[-2]
    gram = x.transpose(-1, -2) @ x / n + ridge * torch.eye(x.shape[-1], dtype=x.dtype,
                                                             device=x.device)
    xty = (x.transpose(-1, -2) @ y.unsqueeze(-1)).squeeze(-1) / n
    want = steps_of(times, lr)
    beta = torch.zeros_like(xty)
    out = {}
    for k in range(max(want) + 1):
        if k in want:
            out[k] = beta
        if k == max(want):
            break
        beta = beta - lr * ((gram @ beta.unsqueeze(-1)).squeeze(-1) - xty)
    return torch.stack([out[k] for k in want], dim=-2)


@method("regression-path", "gradient-flow")
def gradient_flow(x: torch.Tensor, y: torch.Tensor, ridge: float, lr: float,
                  times: Sequence[float]) -> torch.Tensor:
    """The gradient flow in closed form (``lr`` only sets the time unit; unused here)."""
    n = x.shape[-2]
    s, v = torch.linalg.eigh(x.transpose(-1, -2) @ x / n)
    rate = (s + ridge).clamp_min(0.0)  # (S, d); eigenvalues of Σ̂ are ≥ 0 up to round-off
    target = (v.transpose(-1, -2) @ (x.transpose(-1, -2) @ y.unsqueeze(-1))).squeeze(-1) / n
    t = torch.as_tensor(list(times), dtype=x.dtype, device=x.device)
    r = rate.unsqueeze(-2)  # (S, 1, d)
    tt = t.view(1, -1, 1)
    tiny = r <= 1e-12
    factor = torch.where(tiny, tt, -torch.expm1(-tt * r) / torch.where(tiny, 1.0, r))
    coeff = factor * target.unsqueeze(-2)  # (S, T, d) in the eigenbasis
    return coeff @ v.transpose(-1, -2)
