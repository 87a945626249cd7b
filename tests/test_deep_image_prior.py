"""Deep image prior (experiments/deep_image_prior.py): the batched Jacobian against torch.func,
the NTK filter against its closed form, the grouped networks against separate ones."""

from __future__ import annotations

import math

import pytest
import torch

from theorybench.data.sample_images import CROPS, sample_crop
from theorybench.experiments import deep_image_prior as dip


def _small() -> tuple[dip.DipParams, list[torch.Tensor], torch.Tensor]:
    p = dip.DipParams(dim=8, width=3, levels=1, input_channels=2)
    gen = torch.Generator().manual_seed(0)
    init = dip.init_params(p, 2, gen)
    for i in range(1, len(init), 2):        # non-zero biases, to test them too
        init[i] = 0.1 * torch.randn(init[i].shape, generator=gen)
    z = 0.1 * torch.rand(2, 2, 8, 8, generator=gen)
    return p, init, z


def test_psnr_known_value() -> None:
    clean = torch.zeros(4, 4)
    assert float(dip.psnr(clean + 0.1, clean)) == pytest.approx(20.0)


def test_grouped_networks_equal_separate_ones() -> None:
    p, init, z = _small()
    both = dip.forward(init, z, p.levels)
    for j in range(2):
        one = dip.forward([t[j:j + 1] for t in init], z[j:j + 1], p.levels)
        assert torch.allclose(both[j], one[0], atol=1e-6)


def test_jacobian_rows_match_autograd() -> None:
    p, init, z = _small()
    params = [t[:1] for t in init]
    mine = dip.jacobian(params, z[:1], p.levels)
    assert mine.shape == (64, sum(t[0].numel() for t in params))
    leaves = [t.clone().requires_grad_(True) for t in params]
    out = dip.forward(leaves, z[:1], p.levels).reshape(-1)
    for row in (0, 17, 63):
        grads = torch.autograd.grad(out[row], leaves, retain_graph=True)
        ref = torch.cat([g.reshape(-1) for g in grads])
        assert torch.allclose(mine[row], ref, atol=1e-6)


def test_ntk_filter_closed_form_for_scaled_identity() -> None:
    # Θ = c·I: x̂(τ) = y + e^{−cτ}(f₀ − y); with f₀ = clean the best τ is 0, and the PSNR along τ
    # is that of e^{−cτ} clean + (1 − e^{−cτ}) y.
    gen = torch.Generator().manual_seed(1)
    clean = torch.rand(4, 4, generator=gen)
    y = clean + 0.1 * torch.randn(4, 4, generator=gen)
    taus = torch.tensor([0.0, 0.5, 1.0, 3.0], dtype=torch.float64)
    best, tau, stop, _ = dip.ntk_filter(2.0 * torch.eye(16), clean, y, clean, 0.05, taus)
    assert tau == 0.0 and math.isinf(best)
    f0 = torch.zeros(4, 4)
    best, tau, _, within = dip.ntk_filter(2.0 * torch.eye(16), f0, y, clean, 0.05, taus, 0.7)
    curve = [float(dip.psnr((1 - math.exp(-2 * t)) * y.double(), clean.double())) for t in taus]
    assert best == pytest.approx(max(curve))
    assert tau == float(taus[int(torch.tensor(curve).argmax())])
    assert within == pytest.approx(max(curve[:2]))


def test_sample_crops() -> None:
    for name in CROPS:
        x = sample_crop(name, 16)
        assert x.shape == (16, 16) and float(x.min()) >= 0.0 and float(x.max()) <= 1.0
        assert float(x.std()) > 0.05
