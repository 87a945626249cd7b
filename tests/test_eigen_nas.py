"""Eigen-NAS task: the padded supernet computes each architecture exactly, its NTK equals the
Jacobian Gram of theorybench.ntk, architectures sampled from the space, rank statistics, and
seed independence of the kind."""

from __future__ import annotations

import numpy as np
import torch

from theorybench.experiments.eigen_nas import (
    EigenNasParams,
    eigen_nas,
    ntk_scores,
    rank_rows,
    sample_architectures,
)
from theorybench.models.supernet import ACTIVATIONS, Architecture, Supernet
from theorybench.ntk import empirical_ntk

ARCHS = [Architecture(3, 8, ("tanh", "swish", "sigmoid"), (0, 1, 1)),
         Architecture(1, 5, ("relu",), (0,)),
         Architecture(2, 8, ("leaky_relu", "tanh"), (0, 0))]


def single(arch: Architecture, params: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """The architecture written out layer by layer, unpadded."""
    m = arch.width
    h = ACTIVATIONS[arch.activations[0]](x @ params["w0"][:, :m] + params["b0"][:m])
    for i in range(1, arch.depth):
        z = h @ params["w"][i - 1][:m, :m] + params["b"][i - 1][:m]
        h = ACTIVATIONS[arch.activations[i]](z) + arch.skips[i] * h
    return h @ params["wo"][:m] + params["bo"]


def test_padded_networks_compute_each_architecture():
    g = torch.Generator().manual_seed(0)
    net = Supernet(ARCHS, 4, 3, [g] * 3, dtype=torch.float64, depth=4, width=10)
    x = torch.randn(6, 4, dtype=torch.float64)
    out = net.forward(net.params, x)
    for k, arch in enumerate(ARCHS):
        ref = single(arch, {n: v[k] for n, v in net.params.items()}, x)
        torch.testing.assert_close(out[k], ref)


def test_ntk_matches_the_jacobian_gram():
    g = torch.Generator().manual_seed(1)
    net = Supernet(ARCHS, 4, 3, [g] * 3, dtype=torch.float64)
    x = torch.randn(5, 4, dtype=torch.float64)
    theta = net.ntk(net.params, x)
    for k, arch in enumerate(ARCHS):
        m = arch.width
        p = {"w0": net.params["w0"][k][:, :m], "b0": net.params["b0"][k][:m],
             "w": net.params["w"][k][: arch.depth - 1, :m, :m],
             "b": net.params["b"][k][: arch.depth - 1, :m],
             "wo": net.params["wo"][k][:m], "bo": net.params["bo"][k]}
        ref = empirical_ntk(lambda q, a, arch=arch: single(arch, q, a[None])[0].sum(), p, x)
        torch.testing.assert_close(theta[k], ref)


def test_parameter_count():
    arch = Architecture(3, 8, ("relu",) * 3, (0, 1, 0))
    assert arch.n_params(64, 10) == 65 * 8 + 2 * 9 * 8 + 9 * 10


def test_sampled_architectures_stay_in_the_space():
    p = EigenNasParams(archs=50, depths=[1, 3], widths=[4, 16], activations=["relu", "tanh"])
    archs = sample_architectures(p, torch.Generator().manual_seed(0))
    assert {a.depth for a in archs} == {1, 3} and {a.width for a in archs} == {4, 16}
    assert all(len(a.activations) == a.depth and a.skips[0] == 0 for a in archs)
    assert {s for a in archs for s in a.skips[1:]} == {0, 1}


def test_scores_and_rank_statistics():
    theta = torch.diag_embed(torch.tensor([[1.0, 2.0, 3.0], [0.5, 4.0, 4.5]]))
    s = ntk_scores(theta)
    np.testing.assert_allclose(s["lambda_min"], [1.0, 0.5])
    np.testing.assert_allclose(s["trace"], [2.0, 3.0])
    acc = np.array([0.1, 0.5, 0.3, 0.9])
    rows = {r["score"]: r for r in rank_rows({"same": acc, "reverse": -acc}, acc)}
    assert rows["same"]["tau"] == 1.0 and rows["reverse"]["spearman"] == -1.0
    assert rows["same"]["top_acc"] == 0.9 and rows["reverse"]["top_acc"] == 0.1


def test_seed_rows_do_not_depend_on_the_other_seeds():
    p = EigenNasParams(n_train=40, n_val=40, ntk_points=8, archs=5, steps=3, widths=[4, 8],
                       depths=[1, 2])
    both = eigen_nas(p, [3, 4], torch.device("cpu"))
    alone = eigen_nas(p, [4], torch.device("cpu"))
    np.testing.assert_allclose(both[both.seed == 4]["tau"].to_numpy(), alone["tau"].to_numpy())
