"""Mixed Nash task: the duality gap in closed form against a brute-force grid, the equilibria and
the spurious hyperbola of −ω²θ² + ωθ, reflection, and seed independence of the kind."""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from theorybench.experiments.mixed_nash import (
    MixedNashParams,
    duality_gap,
    mixed_nash,
    payoff,
    reflect,
)


def f(theta: np.ndarray, omega: np.ndarray) -> np.ndarray:
    return -omega**2 * theta**2 + omega * theta


def brute_gap(theta: np.ndarray, omega: np.ndarray) -> float:
    grid = np.linspace(-2, 2, 4001)
    best_omega = f(theta[:, None], grid[None, :]).mean(0).max()
    best_theta = f(grid[:, None], omega[None, :]).mean(1).min()
    return float(best_omega - best_theta)


def test_gap_matches_a_brute_force_grid():
    rng = np.random.default_rng(0)
    for _ in range(5):
        theta, omega = rng.uniform(-2, 2, 7), rng.uniform(-2, 2, 5)
        np.testing.assert_allclose(duality_gap(theta[None], omega[None])[0],
                                   brute_gap(theta, omega), atol=1e-5)


def test_mixed_equilibria_have_zero_gap_and_value():
    theta = np.array([[-2.0, 2.0, -0.5, 0.5]])  # any p with mean 0
    omega = np.zeros((1, 3))  # q = δ₀
    assert duality_gap(theta, omega)[0] == 0.0 and payoff(theta, omega)[0] == 0.0


def test_the_hyperbola_is_stationary_but_not_an_equilibrium():
    """V = (1 − 2ωθ)[ω, −θ] vanishes on ωθ = 1/2, where f = 1/4 and the gap is large."""
    t = w = np.sqrt(0.5)
    grad = np.array([-2 * w * w * t + w, -2 * w * t * t + t])
    np.testing.assert_allclose(grad, 0.0, atol=1e-15)
    np.testing.assert_allclose(payoff(np.array([[t]]), np.array([[w]])), 0.25)
    assert duality_gap(np.array([[t]]), np.array([[w]]))[0] > 3


def test_reflection_stays_in_the_box():
    x = np.array([2.5, -2.25, 1.0, 6.0])
    np.testing.assert_allclose(reflect(x), [1.5, -1.75, 1.0, -2.0])


def test_gda_is_trapped_and_langevin_is_not_on_a_small_run():
    cpu = torch.device("cpu")
    gda = mixed_nash(MixedNashParams(algorithm="gda", steps=1500, runs=8), (0,), cpu)
    assert gda.trapped.mean() >= 0.75
    lang = mixed_nash(MixedNashParams(particles=32, steps=1500, runs=8), (0,), cpu)
    assert lang.at_equilibrium.mean() >= 0.75


def test_a_seeds_rows_do_not_depend_on_the_other_seeds():
    p = MixedNashParams(particles=8, steps=50, runs=3)
    alone = mixed_nash(p, (4,), torch.device("cpu"))
    both = mixed_nash(p, (9, 4), torch.device("cpu"))
    pd.testing.assert_frame_equal(both[both.seed == 4].reset_index(drop=True), alone)
