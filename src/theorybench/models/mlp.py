"""Fully-connected ReLU networks with named initializations, batched over seeds.

The network of Zhu, Liu, Chrysos, Cevher (NeurIPS 2022) and the CVPR 2023 tutorial:

    h⁽⁰⁾ = a,   h⁽ˡ⁾ = σ(X_l h⁽ˡ⁻¹⁾)  (l = 1 … L−1),   h_x(a) = (1/α) σ(X_L h⁽ᴸ⁻¹⁾)

with σ = ReLU, no biases, X₁ ∈ ℝ^{m×p}, X_l ∈ ℝ^{m×m}, X_L ∈ ℝ^{1×m} and entries drawn from
N(0, β₁²), N(0, β²), N(0, β_L²). The initialization schemes set (β₁², β², β_L², α) as in the
tutorial's table (:data:`INIT_SCHEMES`). The output ReLU is the paper's; ``output_relu=False``
drops it. Weights carry a leading seed dimension S: one call evaluates S independent networks.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from theorybench.device import generator

InitScale = tuple[float, float, float, float]

INIT_SCHEMES: dict[str, Callable[[int, int], InitScale]] = {
    "lecun": lambda p, m: (1 / p, 1 / m, 1 / m, 1.0),
    "he": lambda p, m: (2 / p, 2 / m, 2 / m, 1.0),
    "ntk": lambda p, m: (2 / m, 2 / m, 1.0, 1.0),
    "xavier": lambda p, m: (2 / (m + p), 1 / m, 2 / (m + 1), 1.0),
    "mean_field": lambda p, m: (1.0, 1.0, 1.0, float(m)),
}


def init_mlp(
    seeds: tuple[int, ...], p: int, width: int, depth: int, scheme: str,
    device: torch.device | str = "cpu",
) -> tuple[list[torch.Tensor], float]:
    """Weights ``[X_1, …, X_L]`` with shapes (S, m, p), (S, m, m), …, (S, 1, m), and α.

    Seed s draws its network from ``generator(s)`` alone, so a network does not depend on the
    other seeds of the batch.
    """
    if depth < 2:
        raise ValueError(f"depth must be at least 2 (input and output layers), got {depth}")
    b1, b, bl, alpha = INIT_SCHEMES[scheme](p, width)
    shapes = [(width, p)] + [(width, width)] * (depth - 2) + [(1, width)]
    variances = [b1] + [b] * (depth - 2) + [bl]
    per_seed = []
    for seed in seeds:
        g = generator(seed)
        per_seed.append([torch.randn(shape, generator=g) * var**0.5
                         for shape, var in zip(shapes, variances, strict=True)])
    weights = [torch.stack([w[i] for w in per_seed]).to(device) for i in range(depth)]
    return weights, alpha


def mlp_forward(
    weights: list[torch.Tensor], alpha: float, a: torch.Tensor, output_relu: bool = True
) -> torch.Tensor:
    """Outputs of shape (S, N) for inputs ``a`` of shape (N, p) or (S, N, p)."""
    h = a if a.dim() == 3 else a.expand(weights[0].shape[0], *a.shape)
    for w in weights[:-1]:
        h = torch.relu(h @ w.transpose(1, 2))
    out = (h @ weights[-1].transpose(1, 2)).squeeze(-1)
    return (torch.relu(out) if output_relu else out) / alpha
