"""The CCP polynomial net and the extrapolation family's seed-batched MLP, on known cases."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from theorybench.models.mlp import SeedMLP
from theorybench.models.polynomial import CCP


def _gens(*seeds: int) -> list[torch.Generator]:
    return [torch.Generator().manual_seed(s) for s in seeds]


def _mlp(gens: list[torch.Generator], in_dim: int, width: int, depth: int,
         activation: str = "relu") -> SeedMLP:
    """The extrapolation kind's MLP: biases, uniform init, linear scalar read-out."""
    return SeedMLP(gens, [in_dim] + [width] * (depth - 1) + [1], activation=activation,  # type: ignore[arg-type]
                   scalar_output=True, draw_order="weights_first")


def _ray(model: torch.nn.Module, h: np.ndarray, n_seeds: int) -> np.ndarray:
    z = torch.tensor(h, dtype=torch.float64)[None, :, None].expand(n_seeds, -1, 1)
    with torch.no_grad():
        return model.double()(z.contiguous()).numpy()


def _relative_residual(h: np.ndarray, y: np.ndarray, degree: int) -> float:
    fit = np.polynomial.Chebyshev.fit(h, y, degree)(h)
    return float(np.sqrt(np.mean((y - fit) ** 2)) / np.sqrt(np.mean((y - y.mean()) ** 2)))


def test_ccp_matches_the_recursion_written_out() -> None:
    net = CCP(_gens(0), in_dim=2, width=3, degree=3, activation="identity")
    z = torch.randn(1, 5, 2, generator=torch.Generator().manual_seed(1))
    u, b, c, beta = net.U[0], net.b[0], net.C[0], net.beta[0]
    u_n = [u[:, 3 * n : 3 * n + 3] for n in range(3)]
    b_n = [b[:, 3 * n : 3 * n + 3] for n in range(3)]
    x = z[0] @ u_n[0] + b_n[0]
    for n in (1, 2):
        x = (z[0] @ u_n[n] + b_n[n]) * x + x
    expected = (x @ c + beta).squeeze(-1)
    torch.testing.assert_close(net(z)[0], expected)


@pytest.mark.parametrize("degree", [1, 2, 3, 5])
def test_identity_ccp_is_a_polynomial_of_degree_n(degree: int) -> None:
    net = CCP(_gens(3, 4), in_dim=1, width=8, degree=degree, activation="identity")
    h = np.linspace(-3.0, 3.0, 40)
    for y in _ray(net, h, 2):
        assert _relative_residual(h, y, degree) < 1e-9
        if degree > 1:
            assert _relative_residual(h, y, degree - 1) > 1e-4


def test_relu_ccp_is_asymptotically_a_polynomial_of_degree_n() -> None:
    net = CCP(_gens(5), in_dim=1, width=16, degree=3, activation="relu")
    h = np.linspace(1e3, 1e4, 30)  # beyond every ReLU switch of a unit-scale network
    (y,) = _ray(net, h, 1)
    assert _relative_residual(h, y, 3) < 1e-9


def test_relu_mlp_is_linear_beyond_its_last_kink() -> None:
    net = _mlp(_gens(6, 7), in_dim=1, width=32, depth=3, activation="relu")
    h = np.linspace(1e3, 1e4, 30)
    for y in _ray(net, h, 2):
        assert _relative_residual(h, y, 1) < 1e-9


def test_tanh_mlp_is_bounded_along_a_ray() -> None:
    net = _mlp(_gens(8), in_dim=1, width=32, depth=2, activation="tanh")
    (y,) = _ray(net, np.array([1e2, 1e5, 1e6]), 1)
    bound = sum(w.abs().sum().item() for w in (net.weights[1], net.biases[1]))
    assert np.all(np.abs(y) <= bound)
    assert y[2] == pytest.approx(y[1], abs=1e-6)


@pytest.mark.parametrize("make", [
    lambda g: CCP(g, in_dim=2, width=4, degree=3, activation="relu"),
    lambda g: _mlp(g, in_dim=2, width=4, depth=3, activation="tanh"),
])
def test_each_seed_draws_its_network_from_its_own_generator(make) -> None:
    pair, alone = make(_gens(10, 11)), make(_gens(11))
    for p_pair, p_alone in zip(pair.parameters(), alone.parameters(), strict=True):
        torch.testing.assert_close(p_pair[1], p_alone[0])
    z = torch.randn(2, 7, 2, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(pair(z)[1], alone(z[1:])[0])


def test_initialization_is_torch_linear_default_range() -> None:
    net = _mlp(_gens(12), in_dim=4, width=64, depth=2)
    w = net.weights[0]
    assert w.shape == (1, 4, 64)
    assert w.abs().max().item() <= 0.5 and w.abs().max().item() > 0.45


def test_degree_must_be_positive() -> None:
    with pytest.raises(ValueError, match="degree"):
        CCP(_gens(0), in_dim=1, width=2, degree=0)


def test_sine_ccp_is_not_a_polynomial_of_degree_n_along_a_ray() -> None:
    """The control's model: the same recursion with sin factors keeps oscillating, so over the
    extrapolation range (h up to 27.5) no polynomial of degree N = 3 follows it."""
    net = CCP(_gens(13), in_dim=1, width=16, degree=3, activation="sin")
    h = np.linspace(2.75, 27.5, 40)
    (y,) = _ray(net, h, 1)
    assert _relative_residual(h, y, 3) > 0.1


def test_relu_ccp_has_degree_n_only_beyond_its_kinks() -> None:
    """Near the data a ReLU CCP is piecewise polynomial: over a range containing kinks a single
    degree-N polynomial does not follow it exactly (so the bound is not automatic there)."""
    net = CCP(_gens(5), in_dim=1, width=16, degree=3, activation="relu")
    h = np.linspace(-3.0, 3.0, 60)
    (y,) = _ray(net, h, 1)
    assert _relative_residual(h, y, 3) > 1e-6
