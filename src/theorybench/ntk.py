"""Neural tangent kernels: the empirical kernel of any functional model, and the closed-form
infinite-width kernel of a two-layer ReLU network.

Empirical NTK (Jacot, Gabriel, Hongler, NeurIPS 2018): for a model ``h(x; a)`` with parameters
``x``, ``Θ(a, a') = ⟨∇ₓh(a), ∇ₓh(a')⟩``. :func:`jacobian` computes every per-example gradient
at once (``torch.func.vmap`` of ``torch.func.jacrev``; no loop over examples) and
:func:`empirical_ntk` returns ``J Jᵀ``. Wrap either in ``torch.func.vmap`` over a leading
parameter dimension to get one kernel per seed.

Two-layer ReLU network in NTK scaling (Du, Zhai, Póczos, Singh, ICLR 2019):
``h(a) = (1/√m) Σ_r v_r σ(w_rᵀa)``, ``w_r ~ N(0, I)``, ``E v_r² = 1``. With ``θ`` the angle
between ``a`` and ``a'``, as ``m → ∞`` its kernel tends to the sum of (Cho & Saul, NeurIPS 2009,
arc-cosine kernels of degree 0 and 1)::

    Θ_w(a, a') = aᵀa' · (π − θ) / (2π)                              (first layer, Du's H∞)
    Θ_v(a, a') = ‖a‖‖a'‖ · (sin θ + (π − θ) cos θ) / (2π)          (second layer)

``train="first"`` gives ``Θ_w`` (Du et al. train only ``w``), ``"second"`` gives ``Θ_v`` (the
random-features kernel), ``"both"`` their sum (Jacot et al.). The empirical kernel's entries
deviate from these by ``O(m^{-1/2})``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Literal

import torch
from torch.func import jacrev, vmap

Params = dict[str, torch.Tensor]


def two_layer_relu(params: Params, a: torch.Tensor) -> torch.Tensor:
    """``(1/√m) Σ_r v_r relu(w_rᵀa)`` for inputs ``a`` of shape ``(..., n, d)``.

    ``params["w"]`` has shape ``(..., m, d)`` and ``params["v"]`` ``(..., m)``; leading
    dimensions (seeds) broadcast. Returns ``(..., n)``.
    """
    w, v = params["w"], params["v"]
    hidden = torch.relu(torch.einsum("...nd,...md->...nm", a, w))
    return torch.einsum("...nm,...m->...n", hidden, v) / math.sqrt(w.shape[-2])


def jacobian(
    fn: Callable[[Params, torch.Tensor], torch.Tensor], params: Params, x: torch.Tensor
) -> torch.Tensor:
    """Per-example gradients of the scalar model ``fn(params, a)``: shape ``(n, P)``.

    ``x`` has shape ``(n, ...)``; the columns follow ``params``' order, each flattened.
    """
    grads = vmap(jacrev(fn), in_dims=(None, 0))(params, x)
    return torch.cat([grads[k].reshape(x.shape[0], -1) for k in params], dim=1)


def empirical_ntk(
    fn: Callable[[Params, torch.Tensor], torch.Tensor],
    params: Params,
    x: torch.Tensor,
    x2: torch.Tensor | None = None,
) -> torch.Tensor:
    """``Θ_ij = ⟨∇h(x_i), ∇h(x2_j)⟩`` over the parameters in ``params``: shape ``(n, n2)``.

    Parameters left out of ``params`` (closed over in ``fn``) are held fixed, so they do not
    contribute to the kernel.
    """
    jx = jacobian(fn, params, x)
    jy = jx if x2 is None else jacobian(fn, params, x2)
    return jx @ jy.T


def _angles(x: torch.Tensor, x2: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Gram ``aᵀa'`` and the norms' product ``‖a‖‖a'‖`` of the rows of ``x`` and ``x2``."""
    dot = x @ x2.transpose(-1, -2)
    norms = x.norm(dim=-1).unsqueeze(-1) * x2.norm(dim=-1).unsqueeze(-2)
    return dot, norms


def arccos_kernel(x: torch.Tensor, x2: torch.Tensor | None = None, degree: int = 0) -> torch.Tensor:
    """``E_{w~N(0,I)}[σ'(wᵀa)σ'(wᵀa')] aᵀa'`` (degree 0) or ``E[σ(wᵀa)σ(wᵀa')]`` (degree 1).

    Degree 0: ``aᵀa' (π − θ)/(2π)``; degree 1: ``‖a‖‖a'‖ (sin θ + (π − θ) cos θ)/(2π)``.
    """
    x2 = x if x2 is None else x2
    dot, norms = _angles(x, x2)
    cos = (dot / norms.clamp_min(torch.finfo(x.dtype).tiny)).clamp(-1.0, 1.0)
    theta = torch.arccos(cos)
    if degree == 0:
        return dot * (math.pi - theta) / (2 * math.pi)
    if degree == 1:
        return norms * (torch.sin(theta) + (math.pi - theta) * cos) / (2 * math.pi)
    raise ValueError(f"degree must be 0 or 1, got {degree}")


def two_layer_relu_ntk(
    x: torch.Tensor,
    x2: torch.Tensor | None = None,
    train: Literal["both", "first", "second"] = "both",
) -> torch.Tensor:
    """Infinite-width NTK of :func:`two_layer_relu` (``E v² = 1``) between the rows of ``x`` and
    ``x2``, for the layers named by ``train``."""
    if train == "first":
        return arccos_kernel(x, x2, degree=0)
    if train == "second":
        return arccos_kernel(x, x2, degree=1)
    if train == "both":
        return arccos_kernel(x, x2, degree=0) + arccos_kernel(x, x2, degree=1)
    raise ValueError(f"train must be 'both', 'first' or 'second', got {train!r}")
