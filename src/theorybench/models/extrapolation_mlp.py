"""Fully-connected networks with a leading seed dimension, for the extrapolation family.

Source: the networks of Xu, Zhang, Li, Du, Kawarabayashi, Jegelka, "How neural networks
extrapolate: from feedforward to graph neural networks", ICLR 2021 (``torch.nn.Linear`` layers
with biases, default initialization, ReLU), with the activation as a parameter so that a smooth
activation (tanh) or a periodic one (sin) can serve as a control.

    a⁽⁰⁾ = z,   a⁽ˡ⁾ = σ(W_lᵀ a⁽ˡ⁻¹⁾ + b_l)   l = 1, …, L − 1,   f(z) = W_Lᵀ a⁽ᴸ⁻¹⁾ + b_L

Every parameter has a leading seed dimension ``S``: ``S`` independent networks, one per seed, each
initialized from its own generator (uniform on ``±1/√fan_in``, the ``torch.nn.Linear`` default),
evaluated with batched matrix products. It differs from ``models/mlp.py`` (bias-free ReLU
networks with named initialization schemes and an output ReLU, for the stability family) in what
the extrapolation papers need: biases (a bias-free ReLU network is positively homogeneous, so it
is exactly linear along every ray from the origin for a trivial reason), a linear output and a
choice of activation.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from theorybench.models.polynomial import ACTIVATIONS, Activation, uniform_init


class ExtrapolationMLP(nn.Module):
    """``S`` seed-independent MLPs with layer sizes ``in_dim → width × (depth − 1) → 1``.

    ``depth`` counts weight layers (``depth = 2``: one hidden layer). ``forward`` maps inputs of
    shape ``(S, n, d)`` to outputs of shape ``(S, n)``.
    """

    def __init__(
        self,
        generators: Sequence[torch.Generator],
        in_dim: int,
        width: int,
        depth: int,
        activation: Activation = "relu",
    ) -> None:
        super().__init__()
        if depth < 2:
            raise ValueError(f"depth must be at least 2 (one hidden layer), got {depth}")
        self.activation = activation
        sizes = [in_dim] + [width] * (depth - 1) + [1]
        self.weights = nn.ParameterList(
            uniform_init(generators, (fan_in, fan_out), fan_in)
            for fan_in, fan_out in zip(sizes[:-1], sizes[1:], strict=True)
        )
        self.biases = nn.ParameterList(
            uniform_init(generators, (1, fan_out), fan_in)
            for fan_in, fan_out in zip(sizes[:-1], sizes[1:], strict=True)
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        sigma = ACTIVATIONS[self.activation]
        a = z
        last = len(self.weights) - 1
        for i, (w, b) in enumerate(zip(self.weights, self.biases, strict=True)):
            a = torch.baddbmm(b, a, w)
            if i < last:
                a = sigma(a)
        return a.squeeze(-1)
