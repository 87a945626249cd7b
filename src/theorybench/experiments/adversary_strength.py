"""The cross-entropy adversary is weak: the margin (BETA) attack finds misclassifications it misses.

Claim (Robey, Latorre, Pappas, Hassani, Cevher, "Adversarial training should be cast as a
non-zero-sum game", ICLR 2024, arXiv 2306.11035, Section 3 and Algorithm 2; the seeds' slide
"Why maximizing cross-entropy leads to weak adversaries"): the attacker's real objective is the
0-1 loss, and maximizing the surrogate L_CE(z, y) = −log softmax(z)_y over the ε-ball need not
produce a misclassification, while maximizing the margins M_j = z_j − z_y over the ball (one per
wrong class j, keeping the best j*) does whenever one exists: max_j max_δ M_j(δ) > 0 ⇔ some δ
misclassifies. The slide's 4-class example, label b = 1 (index 0), network outputs h used as
logits: h_A = (0.26, 0.24, 0.25, 0.25) has L_CE = 1.38 and is still correct, h_B = (0.49, 0.51,
0, 0) has the lower L_CE = 1.18 and is misclassified (:func:`slide_example`): a CE maximizer
prefers the point that is still correct.

Kind ``adversary_strength``: per seed, a split of scikit-learn's digits (``n_train`` training
and ``n_test`` test images, pixels in [0, 1]), an MLP ``64 → hidden → 10`` trained by Adam on
cross-entropy (``training: standard``) or on PGD-CE adversarial examples (``training: pgd``,
Madry et al.), then on every test example the model classifies correctly two ℓ∞ attacks with
the *same* steps T, step α (in units of ε), random starts δ₀ ~ U[−ε, ε]ᵈ and restarts R
(``theorybench.attacks``: projected sign ascent, inputs clipped to [0, 1]):

* the **weak** arm: untargeted PGD on ``weak_loss`` (``ce``: cross-entropy, Madry et al.;
  ``margin``: max_{j≠y} z_j − z_y, Carlini–Wagner) with ``weak_restarts`` restarts (default R);
* the **strong** arm (``strong``): ``beta``, the BETA attack, a targeted-margin ascent for each
  of the K − 1 wrong classes and the best j* kept (K − 1 = 9 times the gradient evaluations of
  one PGD run); or ``top-target``, one targeted-margin ascent toward the wrong class with the
  largest logit at the clean input (the same cost as one PGD run).

An attack *succeeds* on an example when max_{j≠y} z_j(x + δ) > z_y(x + δ). Per seed, with C the
correctly classified test examples:

    strong_only = |{i ∈ C : strong succeeds, weak fails}| / |C|
    weak_only   = |{i ∈ C : weak succeeds, strong fails}| / |C|

Rows: one per (seed, outcome) with ``outcome`` ∈ {strong_only, weak_only} and ``fraction``;
both rows carry the seed's ``clean_acc``, ``weak_robust`` and ``strong_robust`` (accuracies
on all test examples under each attack) and ``n_correct`` (|C|). Streams: the split, the
initialization, the minibatch order and the training attack come from ``adversary_strength/
data``, ``/init``, ``/order``, ``/train-attack``; each evaluation attack has its own stream
(``/weak``, ``/strong``), so one arm's settings never move the other arm's random starts.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import pandas as pd
import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict, Field

from theorybench import attacks
from theorybench.data.digits import load_digits_tensors
from theorybench.models.mlp import SeedMLP
from theorybench.registry import experiment
from theorybench.splits import epoch_orders, minibatches, random_split
from theorybench.streams import stream, streams

NUM_CLASSES = 10


class AdversaryStrengthParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    n_train: int = Field(1000, ge=1, description="training images per seed")
    n_test: int = Field(500, ge=1, description="test images per seed")
    hidden: list[int] = Field([64], description="MLP hidden widths")
    epochs: int = Field(30, ge=1)
    batch_size: int = Field(64, ge=1)
    lr: float = Field(3e-3, gt=0, description="Adam step")
    training: Literal["standard", "pgd"] = Field(
        "standard", description="clean cross-entropy, or PGD-CE adversarial training")
    train_steps: int = Field(5, ge=1, description="PGD steps of adversarial training")
    eps: float = Field(0.1, gt=0, description="ℓ∞ radius ε (pixels in [0, 1])")
    steps: int = Field(10, ge=1, description="sign-ascent steps T of both evaluation attacks")
    step_size: float = Field(0.25, gt=0, description="α in units of ε (both attacks)")
    restarts: int = Field(1, ge=1, description="random restarts R of both attacks")
    weak_loss: Literal["ce", "margin"] = Field("ce", description="objective of the weak arm")
    weak_restarts: int | None = Field(
        None, ge=1, description="restarts of the weak arm (None: the same R as the strong arm)")
    strong: Literal["beta", "top-target"] = Field(
        "beta", description="all K − 1 targeted margins (BETA) or the top wrong class only")


def slide_example() -> dict[str, float]:
    """The seeds' 4-class example, label b = 1 (index 0): cross-entropy −log softmax(h)_b, margin
    max_{j≠b} h_j − h_b and correctness of the outputs h_A = (0.26, 0.24, 0.25, 0.25) and
    h_B = (0.49, 0.51, 0, 0), used as logits as on the slide (L_CE 1.38 and 1.18)."""
    out = {}
    for name, scores in {"A": (0.26, 0.24, 0.25, 0.25), "B": (0.49, 0.51, 0.0, 0.0)}.items():
        logits = torch.tensor(scores, dtype=torch.float64).view(1, 1, 4)
        y = torch.zeros(1, 1, dtype=torch.long)
        out[f"ce_{name}"] = float(attacks.cross_entropy(logits, y))
        out[f"margin_{name}"] = float(attacks.margin(logits, y))
        out[f"correct_{name}"] = float(bool(attacks.correct(lambda z: z, logits, y)))
    return out


def targeted_margin(target: torch.Tensor) -> attacks.Objective:
    """The objective z_t − z_y for a fixed target class per example (``target`` (S, B))."""

    def objective(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        z_t = logits.gather(-1, target.unsqueeze(-1)).squeeze(-1)
        return z_t - logits.gather(-1, y.unsqueeze(-1)).squeeze(-1)

    return objective


def _keep_best(model: SeedMLP, x: torch.Tensor, y: torch.Tensor, best: torch.Tensor,
               best_m: torch.Tensor, x_adv: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    with torch.no_grad():
        m = attacks.margin(model(x_adv), y)
    better = m > best_m
    return torch.where(better.unsqueeze(-1), x_adv, best), torch.where(better, m, best_m)


def strong_attack(model: SeedMLP, x: torch.Tensor, y: torch.Tensor, p: AdversaryStrengthParams,
                  gens: Sequence[torch.Generator]) -> torch.Tensor:
    """The margin arm: BETA over all wrong classes, or the top wrong class's targeted margin;
    ``p.restarts`` restarts, each example keeping the restart of largest margin."""
    eps, alpha = p.eps, p.step_size * p.eps
    with torch.no_grad():
        best_m = attacks.margin(model(x), y)
        others = model(x).scatter(-1, y.unsqueeze(-1), float("-inf"))
    best, top = x, others.argmax(-1)
    for _ in range(p.restarts):
        if p.strong == "beta":
            x_adv = attacks.beta(model, x, y, eps=eps, alpha=alpha, steps=p.steps,
                                 num_classes=NUM_CLASSES, generators=gens)
        else:
            delta = attacks.sign_ascent(model, x, y, targeted_margin(top), eps=eps, alpha=alpha,
                                        steps=p.steps, delta=attacks.uniform_start(x, eps, gens))
            x_adv = x + delta
        best, best_m = _keep_best(model, x, y, best, best_m, x_adv)
    return best


def weak_attack(model: SeedMLP, x: torch.Tensor, y: torch.Tensor, p: AdversaryStrengthParams,
                gens: Sequence[torch.Generator]) -> torch.Tensor:
    """The untargeted PGD arm on ``p.weak_loss``."""
    return attacks.pgd(model, x, y, eps=p.eps, alpha=p.step_size * p.eps, steps=p.steps,
                       restarts=p.weak_restarts or p.restarts, losses=(p.weak_loss,),
                       generators=gens)


def train(p: AdversaryStrengthParams, seeds: Sequence[int], x: torch.Tensor,
          y: torch.Tensor) -> SeedMLP:
    """Adam on the mean cross-entropy of each seed's minibatches (clean or PGD-CE inputs);
    ``x`` (S, n, 64), ``y`` (S, n)."""
    model = SeedMLP(streams(seeds, "adversary_strength/init"), [64, *p.hidden, NUM_CLASSES])
    opt = torch.optim.Adam(model.parameters(), lr=p.lr)
    orders = epoch_orders(streams(seeds, "adversary_strength/order"), p.epochs, x.shape[1])
    attack_gens = streams(seeds, "adversary_strength/train-attack")
    rows = torch.arange(len(seeds)).unsqueeze(-1)
    for epoch in range(p.epochs):
        for idx in minibatches(orders[:, epoch], p.batch_size):
            xb, yb = x[rows, idx], y[rows, idx]
            if p.training == "pgd":
                xb = attacks.pgd(model, xb, yb, eps=p.eps, alpha=2.5 * p.eps / p.train_steps,
                                 steps=p.train_steps, generators=attack_gens)
            logits = model(xb)
            # sum over seeds of each seed's mean loss: the seeds' gradients stay separate
            loss = F.cross_entropy(logits.flatten(0, 1), yb.flatten(), reduction="sum")
            opt.zero_grad()
            (loss / xb.shape[1]).backward()
            opt.step()
    return model


@experiment(
    "adversary_strength",
    family="adversarial",
    params=AdversaryStrengthParams,
    columns=("outcome", "fraction", "clean_acc", "weak_robust", "strong_robust", "n_correct"),
    example={"n_train": 40, "n_test": 20, "hidden": [8], "epochs": 1, "steps": 2},
    cost=lambda p: p.epochs * p.n_train * (p.train_steps if p.training == "pgd" else 1)
    + p.steps * p.restarts * p.n_test * NUM_CLASSES,
)
def adversary_strength(p: AdversaryStrengthParams, seeds: Sequence[int],
                       device: torch.device) -> pd.DataFrame:
    """Two rows per seed (module docstring): the fractions of correctly classified test
    examples that only the strong (margin) arm, or only the weak arm, misclassifies (CPU)."""
    x_all, y_all = load_digits_tensors()
    if p.n_train + p.n_test > len(y_all):
        raise ValueError(f"digits has {len(y_all)} images; the split needs {p.n_train + p.n_test}")
    splits = [random_split(len(y_all), (p.n_train, p.n_test), stream(s, "adversary_strength/data"))
              for s in seeds]
    tr = torch.stack([a for a, _ in splits])
    te = torch.stack([b for _, b in splits])
    model = train(p, seeds, x_all[tr], y_all[tr])
    model.requires_grad_(False)
    x, y = x_all[te], y_all[te]
    with torch.no_grad():
        correct = attacks.correct(model, x, y)
    weak = weak_attack(model, x, y, p, streams(seeds, "adversary_strength/weak"))
    strong = strong_attack(model, x, y, p, streams(seeds, "adversary_strength/strong"))
    with torch.no_grad():
        weak_ok = attacks.margin(model(weak), y) > 0
        strong_ok = attacks.margin(model(strong), y) > 0
    n_correct = correct.sum(1).clamp(min=1).double()
    strong_only = ((strong_ok & ~weak_ok & correct).sum(1) / n_correct).numpy()
    weak_only = ((weak_ok & ~strong_ok & correct).sum(1) / n_correct).numpy()
    common = {
        "clean_acc": correct.double().mean(1).numpy(),
        "weak_robust": (correct & ~weak_ok).double().mean(1).numpy(),
        "strong_robust": (correct & ~strong_ok).double().mean(1).numpy(),
        "n_correct": correct.sum(1).numpy().astype(float),
    }
    tables = []
    for outcome, fraction in (("strong_only", strong_only), ("weak_only", weak_only)):
        tables.append(pd.DataFrame({"seed": list(seeds), "outcome": outcome,
                                    "fraction": fraction, **common}))
    out = pd.concat(tables, ignore_index=True)
    return out.sort_values(["seed", "outcome"], kind="stable").reset_index(drop=True)

