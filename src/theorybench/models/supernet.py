"""Many fully-connected architectures of a search space evaluated as one padded batch.

The search space of Zhu, Liu, Chrysos, Cevher ("Generalization properties of NAS under
activation and skip connection search", NeurIPS 2022) for an MLP: depth ``L`` (hidden layers),
width ``m`` (all hidden layers), an activation σ_l per layer and a skip coefficient α_l ∈ {0, 1}
per hidden layer after the first::

    h₁ = σ₁(x W₁ + b₁),   h_l = σ_l(h_{l−1} W_l + b_l) + α_l h_{l−1}  (l = 2 … L),
    f(x) = h_L W_out + b_out.

:class:`Supernet` holds ``A`` such networks padded to the largest depth and width of the batch:
unit masks zero the hidden units beyond an architecture's width, and a layer beyond its depth
passes ``h`` through unchanged (``torch.where``), so each padded network computes exactly its
architecture's function and its gradients vanish on the padding (padded weights never move).
Each layer applies each activation to the networks that use it there (index selection), and
all ``A`` networks run with batched matrix products. Weights are N(0, gain/fan_in) with the
architecture's own fan-in (He scaling, gain 2, for the hidden layers; gain 1 for the read-out),
biases zero (optionally N(0, s²) in the first layer, for low-dimensional coordinate inputs).

:meth:`Supernet.ntk` returns the empirical NTK of the scalar output ``Σ_c f_c(x)`` (the sum of
the logits) over all parameters, without per-example Jacobians: with ``δ_{l,i} = ∂f(x_i)/∂z_l``
the gradient of the pre-activation ``z_l = h_{l−1} W_l + b_l``, the gradient of ``f(x_i)`` with
respect to ``W_l`` is ``h_{l−1,i} δ_{l,i}ᵀ``, so

    Θ(x_i, x_j) = Σ_l ⟨δ_{l,i}, δ_{l,j}⟩ (⟨h_{l−1,i}, h_{l−1,j}⟩ + 1)

(the ``+1`` from the biases; the read-out has ``δ = 1`` for each of the C logits). The δ's of
all examples come from one backward pass of ``Σ_i Σ_c f_c(x_i)`` (examples do not interact).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

ACTIVATIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "relu": torch.relu,
    "leaky_relu": lambda z: F.leaky_relu(z, 0.1),
    "tanh": torch.tanh,
    "sigmoid": torch.sigmoid,
    "swish": F.silu,
}
"""The activations of Zhu et al.'s search space (their Table 1: ReLU, LeakyReLU, Sigmoid, Tanh,
Swish)."""


@dataclass(frozen=True)
class Architecture:
    """One point of the search space: ``depth`` hidden layers of ``width`` units, the activation
    of each layer and the skip coefficient α_l of each layer (α₁ = 0 always)."""

    depth: int
    width: int
    activations: tuple[str, ...]
    skips: tuple[int, ...]

    def n_params(self, d_in: int, d_out: int) -> int:
        m = self.width
        return (d_in + 1) * m + (self.depth - 1) * (m + 1) * m + (m + 1) * d_out


class Supernet:
    """``A`` architectures padded into one batch (see the module docstring).

    ``params`` is a dict of tensors with a leading architecture dimension: ``w0`` (A, d, M),
    ``b0`` (A, M), ``w`` (A, L−1, M, M), ``b`` (A, L−1, M), ``wo`` (A, M, C), ``bo`` (A, C),
    with ``M`` the largest width and ``L`` the largest depth.
    """

    def __init__(self, archs: Sequence[Architecture], d_in: int, d_out: int,
                 generators: Sequence[torch.Generator], dtype: torch.dtype = torch.float32,
                 depth: int | None = None, width: int | None = None,
                 bias_std: float = 0.0) -> None:
        """``depth`` and ``width`` (default: the batch's largest) fix the padding; each network
        draws its weights from its own generator, in the padded shapes; ``bias_std`` > 0 draws
        the first layer's biases N(0, bias_std²) (else zero)."""
        if len(generators) != len(archs):
            raise ValueError("one generator per architecture")
        self.archs = list(archs)
        self.d_in, self.d_out = d_in, d_out
        a = len(archs)
        m = width or max(x.width for x in archs)
        depth = depth or max(x.depth for x in archs)
        if any(x.width > m or x.depth > depth for x in archs):
            raise ValueError("an architecture exceeds the padding")
        self.max_width, self.max_depth = m, depth
        names = list(ACTIVATIONS)
        units = torch.arange(m)
        self.unit_mask = torch.stack([(units < x.width).to(dtype) for x in archs])      # (A, M)
        self.active = torch.tensor([[i < x.depth for i in range(depth)] for x in archs])  # (A, L)
        alpha = torch.zeros(a, depth, dtype=dtype)
        for k, x in enumerate(archs):
            for i in range(x.depth):
                alpha[k, i] = float(x.skips[i]) if i > 0 else 0.0
        self.alpha = alpha
        self.groups = [
            [(name, torch.tensor([k for k, x in enumerate(archs)
                                  if i < x.depth and x.activations[i] == name]))
             for name in names
             if any(i < x.depth and x.activations[i] == name for x in archs)]
            for i in range(depth)]
        w0, b0, w, wo = [], [], [], []
        for x, g in zip(archs, generators, strict=True):
            w0.append(torch.randn(d_in, m, generator=g, dtype=dtype) * math.sqrt(2 / d_in))
            b0.append(torch.randn(m, generator=g, dtype=dtype) * bias_std if bias_std > 0
                      else torch.zeros(m, dtype=dtype))
            w.append(torch.randn(max(depth - 1, 1), m, m, generator=g, dtype=dtype)
                     * math.sqrt(2 / x.width))
            wo.append(torch.randn(m, d_out, generator=g, dtype=dtype) / math.sqrt(x.width))
        self.params: dict[str, torch.Tensor] = {
            "w0": torch.stack(w0), "b0": torch.stack(b0),
            "w": torch.stack(w)[:, : depth - 1], "b": torch.zeros(a, depth - 1, m, dtype=dtype),
            "wo": torch.stack(wo), "bo": torch.zeros(a, d_out, dtype=dtype),
        }

    def _act(self, z: torch.Tensor, layer: int) -> torch.Tensor:
        """The mixed activation of ``layer`` on ``z`` (A, n, M)."""
        groups = self.groups[layer]
        if len(groups) == 1 and len(groups[0][1]) == len(self.archs):
            out = ACTIVATIONS[groups[0][0]](z)
        else:
            out = torch.zeros_like(z)
            for name, idx in groups:
                out = out.index_put((idx,), ACTIVATIONS[name](z[idx]))
        return out * self.unit_mask[:, None, :]

    def forward(self, params: dict[str, torch.Tensor], x: torch.Tensor,
                keep: list[tuple[torch.Tensor, torch.Tensor]] | None = None) -> torch.Tensor:
        """Logits (A, n, C) for inputs ``x`` (A, n, d) or (n, d). With ``keep`` a list, appends
        each layer's (input h_{l−1}, pre-activation z_l), read-out last."""
        if x.dim() == 2:
            x = x.expand(len(self.archs), *x.shape)
        h_in = x
        z = torch.baddbmm(params["b0"][:, None, :], x, params["w0"])
        if keep is not None:
            keep.append((h_in, z))
        h = self._act(z, 0)
        for i in range(1, self.max_depth):
            z = torch.baddbmm(params["b"][:, i - 1, None, :], h, params["w"][:, i - 1])
            if keep is not None:
                keep.append((h, z))
            new = self._act(z, i) + self.alpha[:, i, None, None] * h
            h = torch.where(self.active[:, i, None, None], new, h)
        out = torch.baddbmm(params["bo"][:, None, :], h, params["wo"])
        if keep is not None:
            keep.append((h, out))
        return out

    def ntk(self, params: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
        """Empirical NTK (A, n, n) of ``Σ_c f_c`` on the inputs ``x`` (module docstring)."""
        params = {k: v.detach().requires_grad_(False) for k, v in params.items()}
        keep: list[tuple[torch.Tensor, torch.Tensor]] = []
        with torch.enable_grad():
            if x.dim() == 2:
                x = x.expand(len(self.archs), *x.shape)
            x = x.detach().clone().requires_grad_(True)
            keep_z: list[tuple[torch.Tensor, torch.Tensor]] = []
            out = self.forward(params, x, keep_z)
            zs = [z for _, z in keep_z]
            deltas = torch.autograd.grad(out.sum(), zs, retain_graph=False, allow_unused=True)
            keep = keep_z
        theta = torch.zeros(x.shape[0], x.shape[1], x.shape[1], dtype=x.dtype)
        for (h, _), delta in zip(keep, deltas, strict=True):
            if delta is None:
                continue
            h, delta = h.detach(), delta.detach()
            gram = h @ h.transpose(1, 2) + 1.0
            theta = theta + (delta @ delta.transpose(1, 2)) * gram
        return theta
