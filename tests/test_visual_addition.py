"""Visual addition: the split of digit pairs, the data drawn from it, the PN variants it trains
(additive CCP, convolutional CCP) on known cases, and the kind's table."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from theorybench.experiments.visual_addition import (
    ALL_PAIRS,
    MODELS,
    VisualAdditionParams,
    _Data,
    pair_split,
    visual_addition,
)
from theorybench.models.cnn import seed_conv
from theorybench.models.polynomial import CCP, ConvCCP

CPU = torch.device("cpu")


def _codes(pairs: torch.Tensor) -> set[int]:
    return set((10 * pairs[:, 0] + pairs[:, 1]).tolist())


def test_held_out_pairs_are_disjoint_from_the_training_pairs() -> None:
    p = VisualAdditionParams(holdout="pairs", n_holdout_pairs=10)
    for seed in range(5):
        train, test = pair_split(p, torch.Generator().manual_seed(seed))
        assert len(train) == 90 and len(test) == 10
        assert not _codes(train) & _codes(test)
        assert _codes(train) | _codes(test) == set(range(100))


def test_no_test_sum_lies_in_the_training_range() -> None:
    p = VisualAdditionParams(holdout="sums", max_train_sum=12)
    train, test = pair_split(p, torch.Generator().manual_seed(0))
    assert int(train.sum(1).max()) == 12 and int(test.sum(1).min()) == 13
    assert len(train) + len(test) == len(ALL_PAIRS)
    assert len(test) == sum(1 for a in range(10) for b in range(10) if a + b > 12)


def test_each_part_shows_the_pairs_and_pool_it_should() -> None:
    p = VisualAdditionParams(n_train=180, n_test=50)
    data = _Data(p, (0, 1))
    labels = data.y
    for s, seed in enumerate((0, 1)):
        from theorybench.streams import stream

        g = stream(seed, "visual_addition/data")
        n_pool = round(p.train_fraction * len(labels))
        from theorybench.splits import random_split

        train_pool, test_pool = random_split(len(labels), (n_pool, None), g)
        train_pairs, held = pair_split(p, g)
        for part, pairs, pool in (("fit", train_pairs, train_pool), ("ood", held, test_pool),
                                  ("id", train_pairs, test_pool)):
            idx, sums = data.parts[part]
            shown = labels[idx[s]]
            assert _codes(shown) <= _codes(pairs), part
            assert torch.equal(sums[s], shown.sum(1))
            assert set(idx[s].flatten().tolist()) <= set(pool.tolist()), part
        assert _codes(labels[data.parts["fit"][0][s]]) == _codes(train_pairs)  # every pair used


def test_additive_ccp_sums_its_factors() -> None:
    gens = [torch.Generator().manual_seed(3)]
    net = CCP(gens, in_dim=4, width=3, degree=3, activation="relu", combine="add")
    z = torch.randn(1, 7, 4, generator=torch.Generator().manual_seed(4))
    proj = torch.relu(z @ net.U + net.b).view(1, 7, 3, 3)
    expected = proj.sum(2) @ net.C + net.beta
    torch.testing.assert_close(net(z), expected.squeeze(-1))


def test_seed_conv_is_each_seeds_own_convolution() -> None:
    g = torch.Generator().manual_seed(0)
    x, w, b = torch.randn(3, 5, 2, 8, 16, generator=g), torch.randn(3, 4, 2, 3, 3, generator=g), \
        torch.randn(3, 4, generator=g)
    expected = torch.stack([F.conv2d(x[s], w[s], b[s], padding=1) for s in range(3)])
    torch.testing.assert_close(seed_conv(x, w, b), expected, rtol=1e-4, atol=1e-5)


def test_conv_ccp_matches_the_recursion_written_out() -> None:
    gens = [torch.Generator().manual_seed(s) for s in (1, 2)]
    net = ConvCCP(gens, (1, 4, 6), width=2, degree=3, activation="identity")
    z = torch.randn(2, 3, 1, 4, 6, generator=torch.Generator().manual_seed(5))
    for s in range(2):
        factors = F.conv2d(z[s], net.U[s], net.b[s], padding=1).view(3, 3, 2, 4, 6)
        x = factors[:, 0]
        for n in (1, 2):
            x = factors[:, n] * x + x
        pooled = F.avg_pool2d(x, 2).flatten(1)
        expected = (pooled @ net.C[s] + net.beta[s]).squeeze(-1)
        torch.testing.assert_close(net(z)[s], expected, rtol=1e-4, atol=1e-5)


def test_the_kind_reports_every_model_and_part_per_seed() -> None:
    p = VisualAdditionParams(n_train=40, n_test=10, width=4, conv_width=2, degree=2, epochs=1,
                             batch_size=20)
    table = visual_addition(p, (0, 1), CPU)
    assert len(table) == 2 * len(MODELS) * 3
    assert set(table.part) == {"ood", "id", "train"}
    assert table.accuracy.between(0, 1).all() and table.leeway_accuracy.ge(table.accuracy).all()
    sizes = table.groupby("model").n_params.first()
    assert sizes["pnn_dense"] == sizes["pnn_add_dense"] and sizes["pnn_conv"] == \
        sizes["pnn_add_conv"]
