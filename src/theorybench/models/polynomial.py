"""Polynomial nets: the CCP model of Π-nets, with a leading seed dimension.

Source: Chrysos, Moschoglou, Bouritsas, Panagakis, Deng, Zafeiriou, "Π-nets: Deep polynomial
neural networks", CVPR 2020 (the CCP model, "coupled CP decomposition"); the variant used for
extrapolation by Wu, Zhu, Liu, Chrysos, Cevher, "Extrapolation and spectral bias of neural nets
with Hadamard product: a polynomial net study", NeurIPS 2022 (their code adds biases).

Recursion, for an input ``z ∈ ℝᵈ``, hidden width ``k`` and degree ``N``, with ``∗`` the Hadamard
(elementwise) product and ``σ`` an elementwise activation (identity in the papers):

    x₁ = σ(U₁ᵀz + b₁)
    xₙ = σ(Uₙᵀz + bₙ) ∗ xₙ₋₁ + xₙ₋₁            n = 2, …, N
    f(z) = Cᵀx_N + β

With ``σ`` the identity, ``xₙ = (1 + Uₙᵀz + bₙ) ∗ xₙ₋₁`` multiplies by one affine function of
``z`` per step, so ``f`` is a polynomial of degree at most ``N`` in ``z`` (and along any ray
``z = (t + h)v`` a polynomial of degree at most ``N`` in ``h``) by construction. With ``σ = ReLU``
each factor is piecewise affine, so ``f`` is piecewise polynomial and only asymptotically (far
along a ray, once no ReLU switches) a polynomial of degree at most ``N``. With ``σ = sin`` the
factors keep oscillating and ``f`` is no polynomial at all (the extrapolation family's control).

Every parameter carries a leading seed dimension ``S``: ``S`` independent networks evaluated by
batched matrix products, one per seed, each initialized from its own generator like
``torch.nn.Linear`` (uniform on ``±1/√fan_in`` for weights and biases).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from theorybench.models.mlp import ACTIVATIONS, Activation, uniform_init

__all__ = ["CCP", "Activation"]


class CCP(nn.Module):
    """``S`` seed-independent CCP polynomial nets of degree ``degree`` (recursion above).

    ``U`` stacks ``U₁, …, U_N`` as column blocks of width ``k`` (shape ``(S, d, N·k)``) and ``b``
    the biases likewise, so one batched product computes every ``Uₙᵀz + bₙ``. Since
    ``xₙ = (1 + σ(Uₙᵀz + bₙ)) ∗ xₙ₋₁``, the recursion unrolls to
    ``x_N = σ(U₁ᵀz + b₁) ∗ Πₙ₌₂ᴺ (1 + σ(Uₙᵀz + bₙ))``. ``forward`` maps inputs of shape
    ``(S, n, d)`` to outputs of shape ``(S, n)``.
    """

    def __init__(
        self,
        generators: Sequence[torch.Generator],
        in_dim: int,
        width: int,
        degree: int,
        activation: Activation = "identity",
    ) -> None:
        super().__init__()
        if degree < 1:
            raise ValueError(f"degree must be at least 1, got {degree}")
        self.degree, self.width, self.activation = degree, width, activation
        self.U = uniform_init(generators, (in_dim, degree * width), in_dim)
        self.b = uniform_init(generators, (1, degree * width), in_dim)
        self.C = uniform_init(generators, (width, 1), width)
        self.beta = uniform_init(generators, (1, 1), width)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        sigma = ACTIVATIONS[self.activation]
        proj = sigma(torch.baddbmm(self.b, z, self.U)).unflatten(-1, (self.degree, self.width))
        x = proj[..., 0, :]
        if self.degree > 1:
            x = x * torch.prod(1 + proj[..., 1:, :], dim=-2)
        return torch.baddbmm(self.beta, x, self.C).squeeze(-1)
