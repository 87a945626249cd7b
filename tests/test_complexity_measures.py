"""Complexity measures (experiments/complexity_measures.py): the measures against closed forms,
the hand-written backward pass against autograd, the identity-layer embedding of shallow nets."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from theorybench.experiments import complexity_measures as cm


def _nets(dims: list[int], m: int = 3, seed: int = 0) -> list[torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return [torch.randn(m, a, b, generator=gen, dtype=torch.float64)
            for a, b in zip(dims, dims[1:], strict=False)]


def test_path_norm_closed_form() -> None:
    w = _nets([5, 4, 3])
    expected = torch.stack([(torch.ones(5, dtype=torch.float64) @ (a.square() @ b.square())).sum()
                            for a, b in zip(w[0], w[1], strict=True)])
    assert torch.allclose(cm.path_norm(w), expected)
    # one layer: the sum of squared weights
    assert torch.allclose(cm.path_norm(w[:1]), w[0].square().sum((1, 2)))


def test_measures_closed_forms() -> None:
    w, w0 = _nets([4, 6, 3], seed=1), _nets([4, 6, 3], seed=2)
    out = cm.measures(w, w0)
    j = 1
    fro = [x[j].square().sum() for x in w]
    dist = [(x[j] - y[j]).square().sum() for x, y in zip(w, w0, strict=True)]
    spec = [torch.linalg.matrix_norm(x[j], ord=2) ** 2 for x in w]
    assert out["params"][j] == pytest.approx(float(sum(fro)))
    assert out["frob"][j] == pytest.approx(float(sum(dist)))
    spec_orig = spec[0] * spec[1] * (fro[0] / spec[0] + fro[1] / spec[1])
    assert out["spec"][j] == pytest.approx(float(torch.log(spec_orig)))
    spec_init = spec[0] * spec[1] * (dist[0] / spec[0] + dist[1] / spec[1])
    assert out["spec_init"][j] == pytest.approx(float(torch.log(spec_init)))


def test_identity_layer_leaves_measures_of_shallow_net_unchanged() -> None:
    w, w0 = _nets([4, 6, 3], m=2, seed=3), _nets([4, 6, 3], m=2, seed=4)
    eye = torch.eye(6, dtype=torch.float64).expand(2, 6, 6)
    padded = cm.measures([w[0], eye, w[1]], [w0[0], eye, w0[1]],
                         live=torch.tensor([[1.0, 0.0, 1.0]] * 2))
    plain = cm.measures(w, w0)
    for key in plain:
        np.testing.assert_allclose(padded[key], plain[key], rtol=1e-10)


def test_hand_backward_matches_autograd() -> None:
    gen = torch.Generator().manual_seed(5)
    w = [torch.randn(2, 7, 5, generator=gen), torch.randn(2, 5, 5, generator=gen),
         torch.randn(2, 5, 10, generator=gen)]
    unit = torch.tensor([[1.0] * 5, [1.0] * 3 + [0.0] * 2])[:, None, :]
    x = torch.randn(2, 8, 7, generator=gen)
    y = torch.randint(10, (2, 8), generator=gen)
    logits, acts = cm._forward(x, w, unit)
    dout = torch.softmax(logits, -1) - torch.eye(10)[y]
    mine = cm._grads(w, acts, dout)
    leaves = [t.clone().requires_grad_(True) for t in w]
    out, _ = cm._forward(x, leaves, unit)
    loss = torch.nn.functional.cross_entropy(out.reshape(-1, 10), y.reshape(-1), reduction="sum")
    for a, b in zip(mine, torch.autograd.grad(loss, leaves), strict=True):
        assert torch.allclose(a, b, atol=1e-5)


def test_kendall() -> None:
    x = np.arange(6.0)
    assert cm.kendall(x, x ** 3) == pytest.approx(1.0)
    assert cm.kendall(x, -x) == pytest.approx(-1.0)
    assert np.isnan(cm.kendall(x, np.ones(6)))


def test_label_noise_fraction_and_grid() -> None:
    p = cm.ComplexityParams(grid="label_noise", n_train=100, noise_levels=[0.0, 0.2],
                            noise_repeats=3)
    data = cm._seed_data(7, p)
    clean, noisy = data["ytr"][0.0], data["ytr"][0.2]
    assert int((clean != noisy).sum()) == 20
    cfg = cm.configs(p)
    assert len(cfg) == 6 and {c[:5] for c in cfg} == {cfg[0][:5]}
