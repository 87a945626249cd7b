"""Attacks of ``theorybench.attacks``: closed forms on linear models, invariants, and a cross-check
of PGD and FGSM against torchattacks on a fixed trained network.

Tolerances of the torchattacks cross-check: without random starts both implementations take the
same deterministic steps (ours sums the cross-entropy over the batch, torchattacks averages it,
which does not change the sign of a gradient coordinate unless it underflows to 0), so at least
99.9% of the adversarial coordinates agree to 1e-5 and the robust accuracies agree to one example.
With random starts the draws differ, so robust accuracies agree within 3 percentage points on
600 test digits.
"""

from __future__ import annotations

import pytest
import torch
import torchattacks
from torch import nn

from theorybench import attacks
from theorybench.data.digits import load_digits_tensors
from theorybench.models.mlp import SeedMLP
from theorybench.streams import streams


def gens(*seeds: int) -> list[torch.Generator]:
    return [torch.Generator().manual_seed(s) for s in seeds]


class Linear(nn.Module):
    """Seed-batched linear classifier z = x W + b (one seed)."""

    def __init__(self, w: torch.Tensor, b: torch.Tensor) -> None:
        super().__init__()
        self.w, self.b = w, b

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.flatten(2) @ self.w + self.b


class Single(nn.Module):
    """A seed-batched network seen as an ordinary (B, *input) → (B, K) one (seed slice 0)."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x.unsqueeze(0)).squeeze(0)


def train_small_mlp() -> tuple[SeedMLP, torch.Tensor, torch.Tensor]:
    """A small MLP trained on 1197 digits for 60 full-batch Adam steps; 600 held-out digits."""
    x, y = load_digits_tensors()
    perm = torch.randperm(len(y), generator=torch.Generator().manual_seed(0))
    tr, te = perm[:1197], perm[1197:]
    net = SeedMLP(streams([0], "test"), [64, 64, 10])
    opt = torch.optim.Adam(net.parameters(), lr=0.01)
    for _ in range(60):
        opt.zero_grad()
        attacks.cross_entropy(net(x[tr][None]), y[tr][None]).mean().backward()
        opt.step()
    net.eval()
    return net, x[te][None], y[te][None]


@pytest.fixture(scope="module")
def trained() -> tuple[SeedMLP, torch.Tensor, torch.Tensor]:
    return train_small_mlp()


def test_losses_known_values() -> None:
    logits = torch.tensor([[[2.0, 1.0, 0.0], [0.0, 3.0, 1.0]]])
    y = torch.tensor([[0, 2]])
    assert torch.allclose(attacks.margin(logits, y), torch.tensor([[-1.0, 2.0]]))
    expected = -torch.log_softmax(logits, -1)[0, [0, 1], [0, 2]]
    assert torch.allclose(attacks.cross_entropy(logits, y), expected[None])


def test_seeds_example_softmax_ce_is_a_weak_adversary() -> None:
    """The tutorial's example: lower cross-entropy, yet misclassified (margin > 0)."""
    probs = torch.tensor([[[0.26, 0.24, 0.25, 0.25], [0.49, 0.51, 1e-9, 1e-9]]])
    logits, y = probs.log(), torch.tensor([[0, 0]])
    ce = attacks.cross_entropy(logits, y)[0]
    assert ce[0] == pytest.approx(1.347, abs=0.01) and ce[1] == pytest.approx(0.713, abs=0.01)
    assert ce[1] < ce[0]
    assert (attacks.margin(logits, y)[0] > 0).tolist() == [False, True]


def test_projection_stays_in_ball_and_box() -> None:
    x = torch.rand(2, 50, 64, generator=torch.Generator().manual_seed(1))
    delta = torch.randn(2, 50, 64, generator=torch.Generator().manual_seed(2))
    out = attacks.project(delta, x, 0.1)
    assert out.abs().max() <= 0.1 + 1e-7
    assert (x + out).min() >= 0 and (x + out).max() <= 1


def test_pgd_reaches_linear_optimum() -> None:
    """For z = xW + b with two classes, the worst δ is −ε·sign(w_y − w_other)."""
    g = torch.Generator().manual_seed(3)
    w, b = torch.randn(64, 2, generator=g), torch.zeros(2)
    x = 0.3 + 0.4 * torch.rand(1, 20, 64, generator=g)  # the box [0, 1] is never active
    y = torch.randint(0, 2, (1, 20), generator=g)
    model = Linear(w, b)
    x_adv = attacks.pgd(model, x, y, eps=0.1, alpha=0.05, steps=5, generators=gens(0),
                        losses=("margin",))
    diff = (w[:, 1] - w[:, 0])  # gradient of z_1 − z_0
    sign = torch.where(y == 0, 1.0, -1.0)[..., None]
    assert torch.allclose(x_adv - x, 0.1 * sign * diff.sign(), atol=1e-6)


def test_beta_picks_best_target_on_linear_model() -> None:
    """Linear model: the best targeted margin is max_j (w_j − w_y)·x + b_j − b_y + ε‖w_j − w_y‖₁."""
    g = torch.Generator().manual_seed(4)
    k, eps = 5, 0.05
    w, b = torch.randn(64, k, generator=g), torch.randn(k, generator=g)
    x = 0.3 + 0.4 * torch.rand(2, 30, 64, generator=g)
    y = torch.randint(0, k, (2, 30), generator=g)
    model = Linear(w, b)
    x_adv = attacks.beta(model, x, y, eps=eps, alpha=eps, steps=2, num_classes=k,
                         generators=gens(0, 1))
    z = model(x)
    dw = w.T[None, None] - w.T[y][:, :, None]  # (S, B, K, d): w_j − w_y
    best = (z - z.gather(-1, y[..., None]) + eps * dw.abs().sum(-1))
    best = best.scatter(-1, y[..., None], float("-inf")).amax(-1)
    assert torch.allclose(attacks.margin(model(x_adv), y), best, atol=1e-4)
    assert (x_adv - x).abs().max() <= eps + 1e-6


def test_restarts_never_weaken_pgd(trained: tuple) -> None:
    net, x, y = trained
    one = attacks.pgd(net, x, y, eps=0.05, alpha=0.0125, steps=5, restarts=1, generators=gens(7))
    two = attacks.pgd(net, x, y, eps=0.05, alpha=0.0125, steps=5, restarts=3, generators=gens(7))
    assert attacks.correct(net, two, y).sum() <= attacks.correct(net, one, y).sum()


def test_seed_slices_are_independent() -> None:
    net = SeedMLP(streams([0, 1], "test"), [64, 16, 10])
    solo = SeedMLP(streams([1], "test"), [64, 16, 10])
    x = torch.rand(2, 10, 64, generator=torch.Generator().manual_seed(5))
    y = torch.randint(0, 10, (2, 10), generator=torch.Generator().manual_seed(6))
    both = attacks.pgd(net, x, y, eps=0.1, alpha=0.03, steps=3, generators=gens(10, 11))
    alone = attacks.pgd(solo, x[1:], y[1:], eps=0.1, alpha=0.03, steps=3, generators=gens(11))
    assert torch.allclose(both[1:], alone, atol=1e-6)


def test_pgd_matches_torchattacks_without_random_start(trained: tuple) -> None:
    net, x, y = trained
    ours = attacks.pgd(net, x, y, eps=0.05, alpha=0.01, steps=10, random_start=False)
    ref = torchattacks.PGD(Single(net), eps=0.05, alpha=0.01, steps=10, random_start=False)(
        x[0], y[0])
    agree = ((ours[0] - ref).abs() <= 1e-5).float().mean()
    assert agree >= 0.999
    acc_ours = attacks.correct(net, ours, y).sum().item()
    acc_ref = attacks.correct(net, ref[None], y).sum().item()
    assert abs(acc_ours - acc_ref) <= 1


def test_fgsm_matches_torchattacks(trained: tuple) -> None:
    net, x, y = trained
    ours = attacks.fgsm(net, x, y, eps=0.05, alpha=0.05, random_start=False)
    ref = torchattacks.FGSM(Single(net), eps=0.05)(x[0], y[0])
    assert ((ours[0] - ref).abs() <= 1e-5).float().mean() >= 0.999


def test_pgd_random_start_matches_torchattacks_accuracy(trained: tuple) -> None:
    net, x, y = trained
    torch.manual_seed(0)  # torchattacks draws its start from the global generator
    ref = torchattacks.PGD(Single(net), eps=0.05, alpha=0.0125, steps=10, random_start=True)(
        x[0], y[0])
    ours = attacks.pgd(net, x, y, eps=0.05, alpha=0.0125, steps=10, generators=gens(0))
    acc_ours = attacks.correct(net, ours, y).float().mean().item()
    acc_ref = attacks.correct(net, ref[None], y).float().mean().item()
    clean = attacks.correct(net, x, y).float().mean().item()
    assert acc_ours < clean - 0.1  # the attack bites at this ε
    assert abs(acc_ours - acc_ref) <= 0.03
