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

``combine = "add"`` replaces the Hadamard product by a sum, ``xₙ = σ(Uₙᵀz + bₙ) + xₙ₋₁``, so
``x_N = Σₙ σ(Uₙᵀz + bₙ)``: the same parameters without the multiplicative interaction (the
visual-addition task's control).

:class:`ConvCCP` is the same recursion with ``Uₙᵀz`` a convolution of the input image (Π-nets'
convolutional CCP: every factor sees the input, ``xₙ = σ(Uₙ ⋆ z + bₙ) ∗ xₙ₋₁ + xₙ₋₁``), read out
by :func:`theorybench.models.cnn.pooled_readout`.

Every parameter carries a leading seed dimension ``S``: ``S`` independent networks evaluated by
batched matrix products, one per seed, each initialized from its own generator like
``torch.nn.Linear`` (uniform on ``±1/√fan_in`` for weights and biases).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Literal

import torch
from torch import nn

from theorybench.models.cnn import pooled_readout, seed_conv
from theorybench.models.mlp import ACTIVATIONS, Activation, uniform_init

__all__ = ["CCP", "Activation", "Combine", "ConvCCP"]

Combine = Literal["hadamard", "add"]


def _combine(factors: Iterable[torch.Tensor], combine: Combine) -> torch.Tensor:
    """``x_N`` from the factors ``σ(Uₙᵀz + bₙ)``, n = 1, …, N: the unrolled recursion
    ``x₁ ∗ Πₙ₌₂ᴺ (1 + factorₙ)`` (Hadamard; the product accumulated from n = 2 upwards) or
    ``Σₙ factorₙ`` (add). Factor by factor rather than as one reduction over a stacked tensor,
    whose backward writes a zero-filled full-size gradient per factor (4× slower training)."""
    first, *rest = factors
    if combine == "add":
        return sum(rest, first)
    if not rest:
        return first
    product = 1 + rest[0]
    for factor in rest[1:]:
        product = product * (1 + factor)
    return first * product


class CCP(nn.Module):
    """``S`` seed-independent CCP polynomial nets of degree ``degree`` (recursion above).

    ``U`` stacks ``U₁, …, U_N`` as column blocks of width ``k`` (shape ``(S, d, N·k)``) and ``b``
    the biases likewise. Since ``xₙ = (1 + σ(Uₙᵀz + bₙ)) ∗ xₙ₋₁``, the recursion unrolls to
    ``x_N = σ(U₁ᵀz + b₁) ∗ Πₙ₌₂ᴺ (1 + σ(Uₙᵀz + bₙ))``, computed one column block at a time.
    ``forward`` maps inputs of shape ``(S, n, d)`` to outputs of shape ``(S, n)``.
    """

    def __init__(
        self,
        generators: Sequence[torch.Generator],
        in_dim: int,
        width: int,
        degree: int,
        activation: Activation = "identity",
        combine: Combine = "hadamard",
    ) -> None:
        super().__init__()
        if degree < 1:
            raise ValueError(f"degree must be at least 1, got {degree}")
        self.degree, self.width, self.activation = degree, width, activation
        self.combine = combine
        self.U = uniform_init(generators, (in_dim, degree * width), in_dim)
        self.b = uniform_init(generators, (1, degree * width), in_dim)
        self.C = uniform_init(generators, (width, 1), width)
        self.beta = uniform_init(generators, (1, 1), width)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        sigma = ACTIVATIONS[self.activation]
        blocks = zip(self.b.split(self.width, -1), self.U.split(self.width, -1), strict=True)
        x = _combine((sigma(torch.baddbmm(b, z, u)) for b, u in blocks), self.combine)
        return torch.baddbmm(self.beta, x, self.C).squeeze(-1)


class ConvCCP(nn.Module):
    """``S`` seed-independent convolutional CCP nets of degree ``degree``: ``width`` channels per
    factor, ``kernel × kernel`` convolutions (stride 1, same padding) of the input, then
    :func:`~theorybench.models.cnn.pooled_readout`. Maps images (S, n, C, H, W) to (S, n)."""

    def __init__(
        self,
        generators: Sequence[torch.Generator],
        input_shape: tuple[int, int, int],
        width: int,
        degree: int,
        kernel: int = 3,
        activation: Activation = "relu",
        combine: Combine = "hadamard",
    ) -> None:
        super().__init__()
        if degree < 1:
            raise ValueError(f"degree must be at least 1, got {degree}")
        c, h, w = input_shape
        fan_in = c * kernel * kernel
        self.degree, self.width, self.activation, self.combine = degree, width, activation, combine
        self.U = uniform_init(generators, (degree * width, c, kernel, kernel), fan_in)
        self.b = uniform_init(generators, (degree * width,), fan_in)
        features = width * (h // 2) * (w // 2)
        self.C = uniform_init(generators, (features, 1), features)
        self.beta = uniform_init(generators, (1, 1), features)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        sigma = ACTIVATIONS[self.activation]
        proj = sigma(seed_conv(z, self.U, self.b))  # (S, n, N·k, H, W)
        x = _combine(proj.unflatten(2, (self.degree, self.width)).unbind(2), self.combine)
        return pooled_readout(x, self.C, self.beta)
