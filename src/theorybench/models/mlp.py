"""Fully-connected networks batched over seeds, with named initializations.

:class:`SeedMLP` holds ``S`` independent networks, one per seed, with layer sizes
``d_0 → d_1 → … → d_L``; every parameter carries a leading seed dimension and one call
evaluates the ``S`` networks with batched matrix products:

    h⁽⁰⁾ = flatten(a),   h⁽ˡ⁾ = σ(h⁽ˡ⁻¹⁾ W_l + b_l)  (l = 1 … L−1),   f(a) = ρ(h⁽ᴸ⁻¹⁾ W_L + b_L) / α

with ``W_l`` of shape (S, d_{l−1}, d_l), biases optional, σ the activation (:data:`ACTIVATIONS`)
and ρ the read-out (identity, or the ReLU of Zhu et al.'s network). Initializations:

* ``uniform``: weights and biases U(−1/√fan_in, 1/√fan_in), PyTorch's ``nn.Linear`` default
  (Xu et al.'s extrapolation MLPs, the adversarial-training classifiers);
* the schemes of Zhu, Liu, Chrysos, Cevher (NeurIPS 2022) and the CVPR 2023 tutorial
  (:data:`INIT_SCHEMES`: ``lecun``, ``he``, ``ntk``, ``xavier``, ``mean_field``): weights
  N(0, β²) drawn in the paper's orientation X_l ∈ ℝ^{d_l × d_{l−1}} (stored transposed), biases
  zero, and the read-out scale α (``mean_field``: α = d_{L−1}).

Seed s draws its whole network from ``generators[s]`` alone, so a network does not depend on the
other seeds of the batch. ``nn.Module`` optimizers act elementwise, so one optimizer trains the
``S`` networks independently when the loss is a sum of per-seed losses.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Literal

import torch
from torch import nn

Activation = Literal["identity", "relu", "tanh", "sin"]

ACTIVATIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "identity": lambda x: x,
    "relu": torch.relu,
    "tanh": torch.tanh,
    "sin": torch.sin,
}

Variance = Callable[[int, int], float]
"""β² of one layer's weights as a function of (fan_in, fan_out)."""

INIT_SCHEMES: dict[str, tuple[Variance, Variance]] = {
    "lecun": (lambda i, o: 1 / i, lambda i, o: 1 / i),
    "he": (lambda i, o: 2 / i, lambda i, o: 2 / i),
    "ntk": (lambda i, o: 2 / o, lambda i, o: 1.0),
    "xavier": (lambda i, o: 2 / (o + i), lambda i, o: 2 / (i + o)),
    "mean_field": (lambda i, o: 1.0, lambda i, o: 1.0),
}
"""Named normal initializations: β² of the input and hidden layers, and of the read-out."""

Init = Literal["uniform", "lecun", "he", "ntk", "xavier", "mean_field"]


def uniform(shape: Sequence[int], fan_in: int, gen: torch.Generator) -> torch.Tensor:
    """U(−1/√fan_in, 1/√fan_in) draws of ``shape`` (the ``nn.Linear``/``nn.Conv2d`` default)."""
    bound = 1.0 / math.sqrt(fan_in)
    return (torch.rand(tuple(shape), generator=gen) * 2.0 - 1.0) * bound


def uniform_init(
    generators: Sequence[torch.Generator], shape: tuple[int, ...], fan_in: int
) -> nn.Parameter:
    """Seed-stacked parameter (S, *shape) whose slice s is :func:`uniform` from
    ``generators[s]``."""
    return nn.Parameter(torch.stack([uniform(shape, fan_in, g) for g in generators]))


def _draw(
    gen: torch.Generator, sizes: Sequence[int], init: str, bias: bool, draw_order: str
) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """One seed's weights and biases (1, d_l), all drawn from ``gen``; weights (d_{l−1}, d_l),
    or (d_l, d_{l−1}) for the normal schemes."""
    pairs = list(zip(sizes[:-1], sizes[1:], strict=True))
    if init != "uniform":
        hidden, readout = INIT_SCHEMES[init]
        ws = [torch.randn((o, i), generator=gen)
              * (readout if k == len(pairs) - 1 else hidden)(i, o) ** 0.5
              for k, (i, o) in enumerate(pairs)]
        return ws, [torch.zeros(1, o) for _, o in pairs] if bias else []
    if draw_order == "weights_first" or not bias:
        ws = [uniform((i, o), i, gen) for i, o in pairs]
        return ws, [uniform((1, o), i, gen) for i, o in pairs] if bias else []
    ws, bs = [], []
    for i, o in pairs:
        ws.append(uniform((i, o), i, gen))
        bs.append(uniform((1, o), i, gen))
    return ws, bs


class SeedMLP(nn.Module):
    """``S`` seed-independent MLPs with layer sizes ``sizes`` (module docstring).

    ``forward`` maps inputs (N, d_0), shared by the seeds, or (S, N, *input) (flattened to
    d_0) to outputs (S, N, d_L), or (S, N) with ``scalar_output``. ``draw_order``: a seed draws
    its uniform weights and biases layer by layer, or all weights before the biases.
    """

    def __init__(
        self,
        generators: Sequence[torch.Generator],
        sizes: Sequence[int],
        *,
        init: Init = "uniform",
        activation: Activation = "relu",
        bias: bool = True,
        readout: Literal["identity", "relu"] = "identity",
        scalar_output: bool = False,
        draw_order: Literal["by_layer", "weights_first"] = "by_layer",
    ) -> None:
        super().__init__()
        if len(sizes) < 2:
            raise ValueError(f"an MLP needs at least input and output sizes, got {list(sizes)}")
        if init != "uniform" and init not in INIT_SCHEMES:
            raise ValueError(f"unknown init {init!r}; known: uniform, {sorted(INIT_SCHEMES)}")
        self.activation, self.readout, self.scalar_output = activation, readout, scalar_output
        self.alpha = float(sizes[-2]) if init == "mean_field" else 1.0
        per_seed = [_draw(g, sizes, init, bias, draw_order) for g in generators]
        n = len(sizes) - 1
        stacked = [torch.stack([ws[k] for ws, _ in per_seed]) for k in range(n)]
        if init != "uniform":  # drawn as (S, d_l, d_{l−1}): keep that memory layout
            stacked = [w.mT for w in stacked]
        self.weights = nn.ParameterList(nn.Parameter(w) for w in stacked)
        self.biases = nn.ParameterList(
            nn.Parameter(torch.stack([bs[k] for _, bs in per_seed])) for k in range(n * bias))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_with(list(self.weights), list(self.biases), x)

    def forward_with(
        self, weights: Sequence[torch.Tensor], biases: Sequence[torch.Tensor], x: torch.Tensor
    ) -> torch.Tensor:
        """The networks' outputs with the given parameters (same shapes as this module's)."""
        h = x.expand(weights[0].shape[0], *x.shape) if x.dim() == 2 else x.flatten(2)
        sigma = ACTIVATIONS[self.activation]
        last = len(weights) - 1
        for k, w in enumerate(weights):
            h = torch.baddbmm(biases[k], h, w) if biases else h @ w
            if k < last:
                h = sigma(h)
        out = torch.relu(h) if self.readout == "relu" else h
        if self.alpha != 1.0:
            out = out / self.alpha
        return out.squeeze(-1) if self.scalar_output else out
