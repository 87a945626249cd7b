"""Kernel overfitting task: the target's moments, the Gram matrices, leave-one-out against brute
force, interpolation, linearity in the labels, the fitted exponent, and seed independence."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from scipy.spatial.distance import cdist

from theorybench.experiments.kernel_overfitting import (
    KernelOverfittingParams,
    distances,
    exponent,
    fit_size,
    gram,
    kernel_overfitting,
    loo_ridge,
    target,
)

CPU = torch.device("cpu")


def test_target_has_mean_zero_and_variance_one():
    x = np.random.default_rng(0).random((200_000, 3))
    f = target(x)
    assert abs(f.mean()) < 0.01 and abs(f.var() - 1) < 0.01


def test_distances_and_kernels():
    rng = np.random.default_rng(1)
    a, b = rng.random((7, 3)), rng.random((5, 3))
    np.testing.assert_allclose(distances(a, b), cdist(a, b), atol=1e-12)
    d = cdist(a, b)
    np.testing.assert_allclose(gram("laplace", 0.5, d), np.exp(-d / 0.5))
    np.testing.assert_allclose(gram("gaussian", 0.2, d), np.exp(-d**2 / 0.08))


def test_leave_one_out_matches_refitting():
    rng = np.random.default_rng(2)
    x = rng.random((30, 2))
    y = np.sin(3 * x[:, 0]) + 0.3 * rng.standard_normal(30)
    k = gram("laplace", 0.5, distances(x, x))
    grid = [1e-4, 1e-2, 1.0]
    errors = []
    for lam in grid:  # brute force: drop point i, refit with the same n·λ scale convention
        err = 0.0
        for i in range(30):
            keep = np.arange(30) != i
            a = np.linalg.solve(k[np.ix_(keep, keep)] + 30 * lam * np.eye(29), y[keep])
            err += (k[i, keep] @ a - y[i]) ** 2
        errors.append(err / 30)
    s, u = np.linalg.eigh(k)
    assert loo_ridge(s, u, y[:, None], grid)[0] == grid[int(np.argmin(errors))]


def test_ridgeless_interpolates_and_is_linear_in_the_labels():
    rng = np.random.default_rng(3)
    p = KernelOverfittingParams(noise=[0.0, 0.5], n_test=200, draws=1)
    x, z, xt = rng.random((60, 3)), rng.standard_normal((60, 1)), rng.random((200, 3))
    rows = fit_size(p, x, z, xt)
    assert rows[0]["train_mse"] < 1e-20 and rows[1]["train_mse"] < 1e-20
    assert rows[1]["residual"] < 1e-10 and rows[0]["excess"] == pytest.approx(rows[0]["bias"])
    k = np.exp(-distances(x, x) / p.bandwidth)
    kt = np.exp(-distances(xt, x) / p.bandwidth)
    y = target(x) + np.sqrt(0.5) * z[:, 0]
    direct = ((kt @ np.linalg.solve(k, y) - target(xt)) ** 2).mean()
    assert rows[1]["excess"] == pytest.approx(direct, rel=1e-8)
    assert rows[1]["ratio"] == pytest.approx(direct / 0.5, rel=1e-8)


def test_the_exponent_of_a_power_law():
    sizes = [100, 200, 400, 800]
    assert exponent(sizes, [3.0 * n**-0.7 for n in sizes]) == pytest.approx(-0.7)


def test_a_tuned_ridge_stays_in_its_grid_and_does_not_interpolate_noise():
    p = KernelOverfittingParams(ridge="tuned", sizes=[20, 40], noise=[1.0], n_test=50, draws=2)
    table = kernel_overfitting(p, (0,), CPU)
    assert table.ridge_used.between(min(p.ridge_grid), max(p.ridge_grid)).all()
    assert (table.train_mse > 1e-6).all() and (table.residual < 1e-8).all()


def test_a_seeds_rows_do_not_depend_on_the_other_seeds():
    p = KernelOverfittingParams(sizes=[20, 40], n_test=50, noise=[0.0, 1.0], draws=2)
    alone = kernel_overfitting(p, (4,), CPU)
    both = kernel_overfitting(p, (9, 4), CPU)
    pd.testing.assert_frame_equal(both[both.seed == 4].reset_index(drop=True), alone)


def test_the_inputs_do_not_depend_on_the_number_of_noise_draws():
    small = KernelOverfittingParams(sizes=[20, 40], n_test=50, noise=[1.0], draws=1)
    one = kernel_overfitting(small, (5,), CPU)
    three = kernel_overfitting(small.model_copy(update={"draws": 3}), (5,), CPU)
    assert one.bias.tolist() == three.bias.tolist()  # same inputs, target and test set
