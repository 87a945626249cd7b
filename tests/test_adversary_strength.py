"""The cross-entropy-adversary kind: the seeds' 4-class example and the attack objectives."""

from __future__ import annotations

import pytest
import torch

from theorybench import attacks
from theorybench.experiments.adversary_strength import (
    AdversaryStrengthParams,
    adversary_strength,
    slide_example,
    targeted_margin,
)


def test_slide_example_cross_entropy_prefers_the_correct_point() -> None:
    ex = slide_example()
    assert ex["ce_A"] == pytest.approx(1.38, abs=0.005)  # the slide's numbers
    assert ex["ce_B"] == pytest.approx(1.18, abs=0.005)
    assert ex["correct_A"] == 1.0 and ex["correct_B"] == 0.0
    # a CE maximizer prefers A (still correct); the margin prefers B (misclassified)
    assert ex["ce_A"] > ex["ce_B"]
    assert ex["margin_A"] == pytest.approx(-0.01) and ex["margin_B"] == pytest.approx(0.02)


def test_binary_cross_entropy_gradient_is_a_positive_multiple_of_the_margin_gradient() -> None:
    """K = 2: L_CE = softplus(margin), so sign steps on CE and on the margin coincide (why the
    binary control is foregone and not used)."""
    torch.manual_seed(0)
    w = torch.randn(5, 2, dtype=torch.float64)
    x = torch.randn(1, 7, 5, dtype=torch.float64, requires_grad=True)
    y = torch.randint(0, 2, (1, 7))
    g_ce, = torch.autograd.grad(attacks.cross_entropy(torch.tanh(x) @ w, y).sum(), x)
    g_m, = torch.autograd.grad(attacks.margin(torch.tanh(x) @ w, y).sum(), x)
    ratio = g_ce / g_m
    assert torch.all(ratio > 0)
    assert torch.allclose(ratio, ratio[..., :1].expand_as(ratio))


def test_targeted_margin_and_success_fractions() -> None:
    logits = torch.tensor([[[3.0, 1.0, 2.0]]])
    y = torch.tensor([[0]])
    assert float(targeted_margin(torch.tensor([[2]]))(logits, y)) == pytest.approx(-1.0)
    p = AdversaryStrengthParams(n_train=60, n_test=40, hidden=[8], epochs=5, batch_size=60,
                                steps=3)
    table = adversary_strength(p, [2000, 2001], torch.device("cpu"))
    assert set(table["outcome"]) == {"strong_only", "weak_only"}
    assert table["fraction"].between(0, 1).all()
    # one seed's rows do not depend on the other seeds of the cell
    alone = adversary_strength(p, [2001], torch.device("cpu"))
    both = table[table["seed"] == 2001].reset_index(drop=True)
    assert alone["fraction"].tolist() == pytest.approx(both["fraction"].tolist())
