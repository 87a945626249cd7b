"""ℓ∞ adversarial attacks on classifiers batched over seeds: PGD with restarts, FGSM, BETA.

Convention: a *seed-batched classifier* maps inputs of shape (S, B, *input) to logits of shape
(S, B, K): S independent networks, each with its own batch (``models/mlp.py``,
``models/cnn.py``). Every attack perturbs ``x`` inside the set

    Δ(x) = {x + δ : ‖δ‖∞ ≤ ε,  lower ≤ x + δ ≤ upper}

and returns the adversarial inputs ``x + δ`` (same shape as ``x``). The per-example objectives:

* ``ce``      L_CE = −log softmax(z)_y                          (Madry et al. ICLR 2018)
* ``margin``  M = max_{j≠y} z_j − z_y   (untargeted Carlini–Wagner margin; M > 0 ⇔ misclassified)
* targeted margin  M_j = z_j − z_y                               (BETA, one j at a time)

Projected sign ascent (the common core):  δ_{t+1} = Π_Δ(δ_t + α · sign ∇_δ J(x + δ_t)).

* **PGD** (Madry et al. 2018): ``steps`` sign-ascent steps from δ₀ ~ U[−ε, ε]ᵈ (or δ₀ = 0);
  with ``restarts`` > 1, each example keeps the perturbation of largest margin M over restarts.
* **FGSM with random start** (Wong, Rice, Kolter, "Fast is better than free", ICLR 2020): one
  step of size α (1.25 ε in the paper) from δ₀ ~ U[−ε, ε]ᵈ.
* **BETA** (Robey, Latorre, Pappas, Hassani, Cevher, "Adversarial training should be cast as a
  non-zero-sum game", 2023, Algorithm 2): for every wrong class j ≠ y, ``steps`` sign-ascent
  steps on M_j from δ_j ~ U[−ε, ε]ᵈ; return δ_{j*} with j* = argmax_j M_j(x + δ_j). All K − 1
  targets run as one batch, so it costs about (K − 1)× a PGD attack with the same steps.

Randomness: ``generators`` holds one ``torch.Generator`` per seed (leading slice of ``x``), so a
seed's perturbations do not depend on the other seeds of the batch. Attacks compute gradients
with respect to the input only and never change the model's mode (train/eval) or parameters.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

Classifier = Callable[[torch.Tensor], torch.Tensor]
Objective = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
"""``objective(logits (S, B, K), y (S, B)) -> per-example values (S, B)``, to be maximized."""

BOUNDS = (0.0, 1.0)


@dataclass(frozen=True)
class ThreatModel:
    """The ℓ∞ threat model and the attack budget a training method may spend."""

    eps: float
    step_size: float
    """α of the multi-step attacks (PGD, BETA, TRADES' inner KL ascent)."""
    steps: int
    fgsm_step_size: float
    """α of single-step FGSM (1.25 ε in Wong et al.)."""
    num_classes: int
    bounds: tuple[float, float] = BOUNDS


def cross_entropy(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Per-example cross-entropy −log softmax(z)_y, shape (S, B)."""
    return F.cross_entropy(logits.flatten(0, 1), y.flatten(), reduction="none").view(y.shape)


def margin(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Per-example margin max_{j≠y} z_j − z_y, shape (S, B); positive means misclassified."""
    true = logits.gather(-1, y.unsqueeze(-1)).squeeze(-1)
    others = logits.scatter(-1, y.unsqueeze(-1), float("-inf"))
    return others.amax(-1) - true


LOSSES: dict[str, Objective] = {"ce": cross_entropy, "margin": margin}


def uniform_start(
    x: torch.Tensor, eps: float, generators: Sequence[torch.Generator]
) -> torch.Tensor:
    """δ₀ ~ U[−ε, ε] of the shape of ``x``, drawn seed by seed from ``generators``."""
    if len(generators) != x.shape[0]:
        raise ValueError(f"need one generator per seed slice: {len(generators)} for {x.shape[0]}")
    draws = [torch.rand(x.shape[1:], generator=g) for g in generators]
    return ((torch.stack(draws).to(x.device) * 2 - 1) * eps).to(x.dtype)


def project(
    delta: torch.Tensor, x: torch.Tensor, eps: float, bounds: tuple[float, float] = BOUNDS
) -> torch.Tensor:
    """Π_Δ: clip δ to the ε-box, then x + δ to ``bounds`` (the box ∩ bounds is a product of
    intervals, so clipping coordinate by coordinate is the exact Euclidean projection)."""
    delta = delta.clamp(-eps, eps)
    return (x + delta).clamp(*bounds) - x


def sign_ascent(
    model: Classifier,
    x: torch.Tensor,
    y: torch.Tensor,
    objective: Objective,
    *,
    eps: float,
    alpha: float,
    steps: int,
    delta: torch.Tensor,
    bounds: tuple[float, float] = BOUNDS,
) -> torch.Tensor:
    """``steps`` projected sign-ascent steps on Σ objective(model(x + δ), y) from ``delta``;
    returns the final δ (detached)."""
    delta = project(delta.detach(), x, eps, bounds)
    for _ in range(steps):
        delta.requires_grad_(True)
        value = objective(model(x + delta), y).sum()
        (grad,) = torch.autograd.grad(value, delta)
        delta = project(delta.detach() + alpha * grad.sign(), x, eps, bounds)
    return delta.detach()


def pgd(
    model: Classifier,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    eps: float,
    alpha: float,
    steps: int,
    restarts: int = 1,
    losses: Sequence[str] = ("ce",),
    random_start: bool = True,
    generators: Sequence[torch.Generator] | None = None,
    bounds: tuple[float, float] = BOUNDS,
) -> torch.Tensor:
    """PGD adversarial inputs; restart r ascends ``losses[r % len(losses)]``, and each example
    keeps the restart with the largest margin."""
    if random_start and generators is None:
        raise ValueError("a random start needs one generator per seed")
    best_x, best_m = x, margin(model(x), y).detach()
    for r in range(restarts):
        start = uniform_start(x, eps, generators) if random_start else torch.zeros_like(x)
        objective = LOSSES[losses[r % len(losses)]]
        delta = sign_ascent(model, x, y, objective, eps=eps, alpha=alpha, steps=steps,
                            delta=start, bounds=bounds)
        with torch.no_grad():
            x_adv = x + delta
            m = margin(model(x_adv), y)
            better = m > best_m
            shape = better.shape + (1,) * (x.dim() - better.dim())
            best_x = torch.where(better.view(shape), x_adv, best_x)
            best_m = torch.where(better, m, best_m)
    return best_x.detach()


def fgsm(
    model: Classifier,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    eps: float,
    alpha: float,
    random_start: bool = True,
    generators: Sequence[torch.Generator] | None = None,
    bounds: tuple[float, float] = BOUNDS,
) -> torch.Tensor:
    """FGSM: one cross-entropy sign step of size α, from a uniform start when ``random_start``."""
    if random_start and generators is None:
        raise ValueError("a random start needs one generator per seed")
    start = uniform_start(x, eps, generators) if random_start else torch.zeros_like(x)
    delta = sign_ascent(model, x, y, cross_entropy, eps=eps, alpha=alpha, steps=1, delta=start,
                        bounds=bounds)
    return (x + delta).detach()


def beta(
    model: Classifier,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    eps: float,
    alpha: float,
    steps: int,
    num_classes: int,
    generators: Sequence[torch.Generator],
    bounds: tuple[float, float] = BOUNDS,
) -> torch.Tensor:
    """BETA: a targeted margin attack for each wrong class j ≠ y, keep the best j* per example."""
    s, b = y.shape
    k = num_classes
    classes = torch.arange(k, device=y.device).expand(s, b, k)
    targets = classes[classes != y.unsqueeze(-1)].view(s, b, k - 1)  # the K − 1 wrong classes
    rep_x = x.unsqueeze(2).expand(s, b, k - 1, *x.shape[2:]).reshape(s, b * (k - 1), *x.shape[2:])
    rep_y = y.unsqueeze(-1).expand(s, b, k - 1).reshape(s, b * (k - 1))
    rep_t = targets.reshape(s, b * (k - 1))

    def targeted_margin(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        z_t = logits.gather(-1, rep_t.unsqueeze(-1)).squeeze(-1)
        return z_t - logits.gather(-1, labels.unsqueeze(-1)).squeeze(-1)

    delta = sign_ascent(model, rep_x, rep_y, targeted_margin, eps=eps, alpha=alpha, steps=steps,
                        delta=uniform_start(rep_x, eps, generators), bounds=bounds)
    with torch.no_grad():
        values = targeted_margin(model(rep_x + delta), rep_y).view(s, b, k - 1)
        best = values.argmax(-1)  # j* index among the K − 1 targets
        delta = delta.view(s, b, k - 1, *x.shape[2:])
        index = best.view(s, b, 1, *([1] * (x.dim() - 2))).expand(s, b, 1, *x.shape[2:])
        chosen = delta.gather(2, index).squeeze(2)
    return (x + chosen).detach()


@torch.no_grad()
def correct(model: Classifier, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Boolean (S, B): the model's argmax equals the label."""
    return model(x).argmax(-1) == y
