"""The GAN-on-a-ring kind: the operator's sign convention, the coverage metrics, Adam."""

from __future__ import annotations

import math

import pytest
import torch

from theorybench.experiments.gan_mixture import (
    Adam,
    GanMixtureParams,
    GanOracle,
    coverage,
    gan_mixture,
)
from theorybench.streams import streams


def test_operator_is_descent_for_the_generator_and_ascent_for_the_discriminator() -> None:
    p = GanMixtureParams(hidden=4, batch=16)
    oracle = GanOracle(p, streams([2000, 2001], "test"))
    z = GanOracle(p, streams([2000, 2001], "init")).init().double()
    xi = oracle.draw(z)
    real, eps = oracle.unpack(xi)
    v = oracle(z, xi)
    n = oracle.n_x
    h = 1e-6
    for block, sign in ((slice(0, n), 1.0), (slice(n, None), -1.0)):
        direction = torch.zeros_like(z)
        direction[:, block] = torch.randn_like(z[:, block], dtype=torch.float64)
        fd = (oracle.objective(z + h * direction, real, eps)
              - oracle.objective(z - h * direction, real, eps)) / (2 * h)
        assert torch.allclose(sign * (v * direction).sum(1), fd, rtol=1e-5, atol=1e-8)


def test_coverage_of_true_samples_is_full_with_the_gaussian_3_sigma_mass() -> None:
    p = GanMixtureParams(sigma=0.05)
    oracle = GanOracle(p, streams([2000], "test"))
    real, _ = oracle.sample(200_000, torch.Generator().manual_seed(0))
    modes, quality = coverage(real.view(1, -1, 2), oracle.centers, p.sigma, 0.1)
    assert modes.item() == 8
    # P(‖N(0, I₂)‖ ≤ 3) = 1 − e^{−9/2}
    assert quality.item() == pytest.approx(1 - math.exp(-4.5), abs=0.002)
    collapsed = oracle.centers[:1].expand(1, 100, 2)
    modes, quality = coverage(collapsed, oracle.centers, p.sigma, 0.02)
    assert (modes.item(), quality.item()) == (1, 1.0)


def test_adam_matches_torch_adam_on_a_quadratic() -> None:
    class Quadratic:
        def __call__(self, z: torch.Tensor, xi: object = None) -> torch.Tensor:
            return 2 * z

    z0 = torch.tensor([[1.0, -2.0, 0.5]], dtype=torch.float64)
    method, state, z = Adam(), {}, z0.clone()
    state = method.init(Quadratic(), z)
    ref = z0.clone().requires_grad_(True)
    opt = torch.optim.Adam([ref], lr=0.1, betas=Adam.betas, eps=1e-8)
    for k in range(20):
        z = method.step(Quadratic(), z, state, 0.1, k)
        opt.zero_grad()
        (ref * ref).sum().backward()
        opt.step()
    assert torch.allclose(z, ref.detach(), atol=1e-10)


def test_seed_rows_do_not_depend_on_the_other_seeds() -> None:
    p = GanMixtureParams(algorithm="bc-seg+", steps=4, hidden=4, batch=8, eval_samples=32)
    both = gan_mixture(p, [2000, 2001], torch.device("cpu"))
    alone = gan_mixture(p, [2001], torch.device("cpu"))
    assert alone["grad_norm"].iloc[0] == pytest.approx(both["grad_norm"].iloc[1], rel=1e-5)
