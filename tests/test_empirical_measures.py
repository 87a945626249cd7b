"""Empirical-measures task: exact W₁ (assignment and sorting) against known values, the fitted
exponent, the predicted rates, the embedded measure, and seed independence."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from scipy.optimize import linear_sum_assignment
from scipy.spatial.distance import cdist

from theorybench.experiments.empirical_measures import (
    WassersteinRateParams,
    embedding,
    fitted_exponent,
    predicted_exponent,
    replicates,
    sample,
    w1_exact,
    wasserstein_rate,
)

CPU = torch.device("cpu")


def test_w1_of_a_translate_is_the_shift():
    """W₁(μ, μ + v) = ‖v‖ (the identity coupling, optimal by duality with f(x) = ⟨x, v⟩/‖v‖)."""
    x = np.random.default_rng(0).random((40, 3))
    v = np.array([0.3, -0.1, 0.2])
    assert w1_exact(x, x + v) == pytest.approx(np.linalg.norm(v))


def test_sorting_is_the_optimal_assignment_in_one_dimension():
    rng = np.random.default_rng(1)
    x, y = rng.random((50, 1)), rng.random((50, 1))
    cost = cdist(x, y)
    rows, cols = linear_sum_assignment(cost)
    assert w1_exact(x, y) == pytest.approx(cost[rows, cols].mean())


def test_w1_of_two_point_measures():
    x = np.array([[0.0, 0.0], [1.0, 0.0]])
    y = np.array([[1.0, 1.0], [0.0, 1.0]])
    assert w1_exact(x, y) == pytest.approx(1.0)


def test_exponents():
    sizes = [32, 64, 128]
    assert fitted_exponent(sizes, [2 * n ** (-1 / 3) for n in sizes]) == pytest.approx(-1 / 3)
    assert predicted_exponent(1) == predicted_exponent(2) == -0.5
    assert predicted_exponent(12) == pytest.approx(-1 / 12)


def test_replicates_balance_the_sizes():
    p = WassersteinRateParams(sizes=[32, 64, 512])
    assert [replicates(p, n) for n in p.sizes] == [16, 8, 1]
    assert replicates(WassersteinRateParams(p=1, sizes=[32, 64]), 64) == 32


def test_the_embedded_measure_is_fixed_and_curved():
    p = WassersteinRateParams(p=6, intrinsic=2, sizes=[8, 16])
    (w1, b1), (w2, b2) = embedding(p), embedding(p)
    np.testing.assert_array_equal(w1, w2)
    np.testing.assert_array_equal(b1, b2)
    pts = sample(p, 500, (w1, b1), torch.Generator().manual_seed(0))
    assert pts.shape == (500, 6) and np.abs(pts).max() <= 1 / np.sqrt(3) + 1e-12
    sv = np.linalg.svd(pts - pts.mean(0), compute_uv=False)
    assert sv[2] > 0.05 * sv[0]  # not a flat 2-D embedding
    with pytest.raises(ValueError):
        WassersteinRateParams(p=3, intrinsic=3)


def test_a_seeds_rows_do_not_depend_on_the_other_seeds():
    p = WassersteinRateParams(p=3, sizes=[8, 16, 32])
    alone = wasserstein_rate(p, (4,), CPU)
    both = wasserstein_rate(p, (9, 4), CPU)
    pd.testing.assert_frame_equal(both[both.seed == 4].reset_index(drop=True), alone)
