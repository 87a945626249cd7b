"""Empirical NTK (torch.func) against closed forms: a linear model, per-example autograd, and the
infinite-width two-layer ReLU kernel (arc-cosine kernels) at large width.

Tolerance of the large-width check: the empirical kernel is an average over m i.i.d. neurons, so
its entries deviate from the limit by O(m^{-1/2}) (relative Frobenius error ≈ 0.37 at m = 100 and
≈ 0.005 at m = 10⁵ in a pilot). At m = 50 000 we require a relative Frobenius error below 0.03,
a margin of about 4× over the expected ≈ 0.007.
"""

from __future__ import annotations

import math

import pytest
import torch
from torch.func import vmap

from theorybench.data.synthetic import sphere
from theorybench.ntk import (
    arccos_kernel,
    empirical_ntk,
    jacobian,
    two_layer_relu,
    two_layer_relu_ntk,
)

LARGE_WIDTH_TOL = 0.03


def _net(m: int, d: int, seed: int) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {"w": torch.randn(m, d, generator=g, dtype=torch.float64),
            "v": torch.randn(m, generator=g, dtype=torch.float64)}


def _scalar(params: dict[str, torch.Tensor], a: torch.Tensor) -> torch.Tensor:
    return two_layer_relu(params, a[None])[0]


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).norm() / b.norm())


def test_linear_model_kernel_is_the_input_gram() -> None:
    x = torch.randn(7, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    params = {"w": torch.randn(4, dtype=torch.float64)}
    kernel = empirical_ntk(lambda p, a: p["w"] @ a, params, x)
    torch.testing.assert_close(kernel, x @ x.T)


def test_jacobian_matches_per_example_autograd() -> None:
    params = _net(6, 3, seed=1)
    x = sphere(5, 3, torch.Generator().manual_seed(2), dtype=torch.float64)
    rows = []
    for a in x:
        leaves = {k: t.clone().requires_grad_() for k, t in params.items()}
        grads = torch.autograd.grad(_scalar(leaves, a), list(leaves.values()))
        rows.append(torch.cat([g.flatten() for g in grads]))
    torch.testing.assert_close(jacobian(_scalar, params, x), torch.stack(rows))


def test_arccos_kernels_known_angles() -> None:
    a = torch.tensor([[2.0, 0.0], [0.0, 3.0]], dtype=torch.float64)
    k0, k1 = arccos_kernel(a, degree=0), arccos_kernel(a, degree=1)
    # θ = 0: (π − 0)/(2π) = 1/2 of ‖a‖²; θ = π/2: aᵀa' = 0 and sin θ / (2π) = 1/(2π).
    torch.testing.assert_close(torch.diagonal(k0), torch.tensor([2.0, 4.5], dtype=torch.float64))
    torch.testing.assert_close(torch.diagonal(k1), torch.tensor([2.0, 4.5], dtype=torch.float64))
    assert float(k0[0, 1]) == pytest.approx(0.0, abs=1e-12)
    assert float(k1[0, 1]) == pytest.approx(6.0 / (2 * math.pi))
    # antiparallel: θ = π gives zero for both kernels
    b = torch.tensor([[1.0, 0.0], [-1.0, 0.0]], dtype=torch.float64)
    assert float(arccos_kernel(b, degree=0)[0, 1]) == pytest.approx(0.0, abs=1e-12)
    assert float(arccos_kernel(b, degree=1)[0, 1]) == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize("train", ["both", "first", "second"])
def test_empirical_ntk_matches_closed_form_at_large_width(train: str) -> None:
    x = sphere(16, 5, torch.Generator().manual_seed(3), dtype=torch.float64)
    x = x * torch.linspace(0.5, 2.0, 16, dtype=torch.float64).unsqueeze(1)  # not only unit norms
    params = _net(50_000, 5, seed=4)
    if train == "both":
        kernel = empirical_ntk(_scalar, params, x)
    elif train == "first":
        v = params["v"]
        kernel = empirical_ntk(lambda p, a: _scalar({"w": p["w"], "v": v}, a),
                               {"w": params["w"]}, x)
    else:
        w = params["w"]
        kernel = empirical_ntk(lambda p, a: _scalar({"w": w, "v": p["v"]}, a),
                               {"v": params["v"]}, x)
    assert _rel(kernel, two_layer_relu_ntk(x, train=train)) < LARGE_WIDTH_TOL


def test_empirical_ntk_error_shrinks_like_inverse_sqrt_width() -> None:
    x = sphere(12, 4, torch.Generator().manual_seed(5), dtype=torch.float64)
    limit = two_layer_relu_ntk(x)
    errors = {}
    for m in (400, 40_000):
        errs = [_rel(empirical_ntk(_scalar, _net(m, 4, seed=s), x), limit) for s in range(4)]
        errors[m] = sum(errs) / len(errs)
    ratio = errors[400] / errors[40_000]
    assert 4.0 < ratio < 25.0  # m^{-1/2} predicts 10


def test_vmap_over_seeds_equals_per_seed_kernels() -> None:
    x = sphere(6, 3, torch.Generator().manual_seed(6), dtype=torch.float64)
    nets = [_net(20, 3, seed=s) for s in range(3)]
    stacked = {k: torch.stack([n[k] for n in nets]) for k in nets[0]}
    batched = vmap(lambda p: empirical_ntk(_scalar, p, x))(stacked)
    for i, net in enumerate(nets):
        torch.testing.assert_close(batched[i], empirical_ntk(_scalar, net, x))


def test_two_layer_relu_broadcasts_over_seeds() -> None:
    x = sphere(5, 3, torch.Generator().manual_seed(7), dtype=torch.float64)
    nets = [_net(8, 3, seed=s) for s in range(2)]
    stacked = {k: torch.stack([n[k] for n in nets]) for k in nets[0]}
    out = two_layer_relu(stacked, x)
    assert out.shape == (2, 5)
    torch.testing.assert_close(out[1], two_layer_relu(nets[1], x))
