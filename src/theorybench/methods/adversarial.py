"""Training methods of the adversarial family, behind one interface.

A method is a function

    method(model, x, y, threat, generators) -> per-example training losses, shape (S, B)

where ``model`` is a seed-batched classifier ((S, B, *input) → logits (S, B, K)), ``x``/``y`` a
minibatch per seed, ``threat`` a :class:`theorybench.attacks.ThreatModel` (ε, step sizes, steps,
number of classes, input bounds) and ``generators`` one ``torch.Generator`` per seed for the
attack's random starts. The experiment averages the losses over B, sums over seeds and takes an
optimizer step; a method never steps the optimizer itself and leaves the model in train mode.
This is the ``at-method`` family (protocol :class:`ATMethod`); register a method with
``@method("at-method", "<name>")``: adding a method is adding one function.

Methods (inner maximization → outer loss):

* ``standard``  ERM: L_CE(h(x), y).
* ``fgsm``      FGSM-AT with random start (Wong, Rice, Kolter ICLR 2020): one step of size
                ``fgsm_step_size`` (1.25 ε) from δ₀ ~ U[−ε, ε]; L_CE(h(x + δ), y).
* ``pgd``       PGD-AT (Madry et al. ICLR 2018; Rice, Wong, Kolter ICML 2020): ``steps`` CE sign
                steps of size ``step_size`` from a uniform start; L_CE(h(x + δ), y).
* ``trades``    TRADES (Zhang et al. ICML 2019): δ maximizes KL(p(x) ‖ p(x + δ)) by ``steps`` sign
                steps from δ₀ = 0.001·N(0, I) (model in eval mode, as in the authors' code);
                L_CE(h(x), y) + β·KL(p(x) ‖ p(x + δ)) with β = 6.
* ``beta``      BETA-AT (Robey, Latorre, Pappas, Hassani, Cevher 2023, Algorithm 1): the BETA
                attack (per wrong class j, ``steps`` sign steps on the margin h_j − h_y; keep the
                class j* of largest margin); L_CE(h(x + δ_{j*}), y).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import torch
import torch.nn.functional as F
from torch import nn

from theorybench import attacks
from theorybench.attacks import ThreatModel
from theorybench.registry import method, method_family

FAMILY = "at-method"


class ATMethod(Protocol):
    """An adversarial-training loss: per-example training losses, shape (S, B)."""

    def __call__(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, threat: ThreatModel,
                 generators: Sequence[torch.Generator]) -> torch.Tensor: ...


method_family(FAMILY, ATMethod, "adversarial-training losses on a seed-batched classifier")

TRADES_BETA = 6.0
"""TRADES' weight 1/λ on the KL term (Zhang et al. 2019, CIFAR-10 setting)."""


@method(FAMILY, "standard")
def standard(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, threat: ThreatModel,
    generators: Sequence[torch.Generator],
) -> torch.Tensor:
    return attacks.cross_entropy(model(x), y)


@method(FAMILY, "fgsm")
def fgsm(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, threat: ThreatModel,
    generators: Sequence[torch.Generator],
) -> torch.Tensor:
    x_adv = attacks.fgsm(model, x, y, eps=threat.eps, alpha=threat.fgsm_step_size,
                         generators=generators, bounds=threat.bounds)
    return attacks.cross_entropy(model(x_adv), y)


@method(FAMILY, "pgd")
def pgd(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, threat: ThreatModel,
    generators: Sequence[torch.Generator],
) -> torch.Tensor:
    x_adv = attacks.pgd(model, x, y, eps=threat.eps, alpha=threat.step_size, steps=threat.steps,
                        generators=generators, bounds=threat.bounds)
    return attacks.cross_entropy(model(x_adv), y)


def _kl(logits_adv: torch.Tensor, p_clean: torch.Tensor) -> torch.Tensor:
    """Per-example KL(p_clean ‖ softmax(logits_adv)), shape (S, B)."""
    return F.kl_div(F.log_softmax(logits_adv, -1), p_clean, reduction="none").sum(-1)


@method(FAMILY, "trades")
def trades(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, threat: ThreatModel,
    generators: Sequence[torch.Generator],
) -> torch.Tensor:
    noise = torch.stack([torch.randn(x.shape[1:], generator=g) for g in generators])
    model.eval()
    with torch.no_grad():
        p_clean = F.softmax(model(x), -1)
    delta = attacks.sign_ascent(
        model, x, y, lambda logits, _: _kl(logits, p_clean), eps=threat.eps,
        alpha=threat.step_size, steps=threat.steps, delta=0.001 * noise.to(x), bounds=threat.bounds,
    )
    model.train()
    logits = model(x)
    kl = _kl(model(x + delta), F.softmax(logits, -1))
    return attacks.cross_entropy(logits, y) + TRADES_BETA * kl


@method(FAMILY, "beta")
def beta(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, threat: ThreatModel,
    generators: Sequence[torch.Generator],
) -> torch.Tensor:
    x_adv = attacks.beta(model, x, y, eps=threat.eps, alpha=threat.step_size, steps=threat.steps,
                         num_classes=threat.num_classes, generators=generators,
                         bounds=threat.bounds)
    return attacks.cross_entropy(model(x_adv), y)
