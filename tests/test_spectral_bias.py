"""Spectral-bias task: the target's Fourier coefficients, the Rayleigh quotient of a circulant
kernel (its eigenvalues), the rate fit on exact exponentials, and seed independence."""

from __future__ import annotations

import math

import numpy as np
import torch

from theorybench.experiments.spectral_bias import (
    SpectralBiasParams,
    fit_rates,
    fourier_coefficients,
    fourier_rayleigh,
    loglog_slope,
    spectral_bias,
    target,
)


def test_target_coefficients_on_the_training_grid():
    p = SpectralBiasParams(grid_points=32, freqs=[1, 3, 7], amplitudes="decaying")
    x, y = target(p, torch.Generator().manual_seed(0))
    coef = fourier_coefficients(y[::2], [1, 3, 7, 5])
    # |Σ_j a sin(2πkj/n + φ) e^{−2πikj/n}| = a n / 2 at the target's frequencies, 0 elsewhere
    np.testing.assert_allclose(coef.numpy(), [16.0, 16.0 / 3, 16.0 / 7, 0.0], atol=1e-9)


def test_rayleigh_quotient_is_the_circulant_eigenvalue():
    n = 16
    c = torch.tensor([1.0 / (1 + min(j, n - j)) ** 2 for j in range(n)], dtype=torch.float64)
    theta = torch.stack([torch.roll(c, i) for i in range(n)])          # symmetric circulant
    eig = torch.fft.fft(c).real                                        # its eigenvalues
    np.testing.assert_allclose(fourier_rayleigh(theta, [0, 1, 5]).numpy(),
                               eig[[0, 1, 5]].numpy(), atol=1e-12)


def test_rate_fit_recovers_exponential_rates():
    steps = np.array([0, 1, 3, 10, 30, 100])
    rates = np.array([0.2, 0.01])
    err = 2.0 * np.exp(-rates[:, None] * steps[None])
    rel = err / 2.0
    fit = fit_rates(rel, err, steps, floor=1e-6)
    np.testing.assert_allclose(fit, rates, rtol=1e-10)
    # checkpoints below the floor are left out; none above it gives NaN
    assert np.isnan(fit_rates(rel * 0 + 1e-9, err, steps, floor=0.05)).all()


def test_loglog_slope():
    x = np.array([1.0, 2.0, 4.0, 8.0])
    assert math.isclose(loglog_slope(x, 3 * x**1.5), 1.5)
    assert math.isnan(loglog_slope(np.array([1.0, -1.0]), np.array([1.0, 1.0])))


def test_seed_rows_do_not_depend_on_the_other_seeds():
    p = SpectralBiasParams(grid_points=16, freqs=[1, 4], width=8, depth=1, steps=5, curve_points=3,
                           features="fourier", n_features=4)
    both = spectral_bias(p, [7, 8], torch.device("cpu"))
    alone = spectral_bias(p, [8], torch.device("cpu"))
    np.testing.assert_allclose(both[both.seed == 8]["residual"].to_numpy(),
                               alone["residual"].to_numpy())
    assert set(both.band) == {"low", "high"}
