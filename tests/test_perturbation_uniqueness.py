"""perturbation_uniqueness: per-example gradients, the pair statistics and the rows."""

from __future__ import annotations

import pytest
import torch

from theorybench.experiments.perturbation_uniqueness import (
    PerturbationUniquenessParams,
    _pair_mean,
    per_example_grads,
    perturbation_uniqueness,
)
from theorybench.models.mlp import SeedMLP
from theorybench.streams import streams


def test_per_example_grads_match_autograd_one_example_at_a_time():
    model = SeedMLP(streams([1, 2], "test/init"), [5, 4, 3])
    x = torch.rand(2, 6, 5)
    y = torch.randint(0, 3, (2, 6))
    grads = per_example_grads(model, x, y)
    assert grads.shape == (2, 6, sum(p[0].numel() for p in model.parameters()))
    for s in range(2):
        for i in range(6):
            model.zero_grad()
            logits = model(x[:, i:i + 1])
            torch.nn.functional.cross_entropy(logits[s, 0:1], y[s, i:i + 1]).backward()
            expected = torch.cat([p.grad[s].flatten() for p in model.parameters()])
            torch.testing.assert_close(grads[s, i], expected)


def test_pair_mean_averages_the_upper_triangle():
    values = torch.arange(9.0).view(3, 3, 1)
    assert _pair_mean(values).item() == pytest.approx((1 + 2 + 5) / 3)


def test_rows_and_ranges():
    p = PerturbationUniquenessParams(n_train=60, n_test=6, hidden=[8], epochs=2, eps=[0.1, 0.3],
                                     starts=3, steps=3)
    table = perturbation_uniqueness(p, [5, 6], torch.device("cpu"))
    assert len(table) == 2 * 2 * 2
    assert set(table["measure"]) == {"pairs", "jitter"}
    assert (table["distance"] >= 0).all() and (table["distance"] <= 2 + 1e-9).all()
    assert (table["grad_cosine"] <= 1 + 1e-6).all() and (table["loss_cv"] >= 0).all()
    # a seed's rows do not depend on which other seeds share its cell
    alone = perturbation_uniqueness(p, [6], torch.device("cpu"))
    shared = table[table["seed"] == 6].reset_index(drop=True)
    torch.testing.assert_close(torch.tensor(alone["distance"].to_numpy()),
                               torch.tensor(shared["distance"].to_numpy()), rtol=1e-4,
                               atol=1e-6)


def test_mean_pair_cosine_equals_the_mean_over_pairs(monkeypatch):
    import theorybench.experiments.perturbation_uniqueness as module

    monkeypatch.setattr(module, "GRAD_CHUNK", 2)  # several chunks
    model = SeedMLP(streams([3], "test/init"), [4, 6, 3])
    x = torch.rand(1, 5, 4)
    y = torch.randint(0, 3, (1, 5))
    deltas = [0.1 * torch.randn(1, 5, 4) for _ in range(4)]
    grads = [per_example_grads(model, x + d, y) for d in deltas]
    cos = torch.stack([torch.stack([torch.nn.functional.cosine_similarity(a, b, dim=-1)
                                    for b in grads]) for a in grads])
    torch.testing.assert_close(module.mean_pair_cosine(model, x, y, deltas), _pair_mean(cos))
