"""Optimized adversarial perturbations are not unique: Danskin's corollary in practice.

Claim (Latorre, Krawczuk, Dadi, Pethick, Cevher, "Finding actual descent directions for
adversarial training", ICLR 2023, Section 3 and its figure on CIFAR-10; the seeds' slide
"Optimized perturbations are typically not unique!"): for a trained network, PGD run from
different random starts on the same example ends at perturbations that are far apart, while
their losses concentrate around one value well above the clean loss. The inner problem
max_{‖δ‖∞ ≤ ε} L(θ; x + δ, y) then has several (near-)maximizers, so Danskin's corollary
∇_θ max_δ L = ∇_θ L(θ; x + δ*, y), which needs a unique maximizer δ*, does not apply, and the
parameter gradients at different maximizers need not agree.

Kind ``perturbation_uniqueness``: per seed, a split of the data set (``n_train`` training and
``n_test`` attacked test examples, pixels in [0, 1]), a network (``hidden`` = [] is the linear
softmax model, whose loss is convex in δ) trained by Adam on clean cross-entropy, then for every
ε in ``eps`` and every test example R = ``starts`` runs of PGD on the cross-entropy
(``steps`` projected sign-ascent steps of α = ``step_size``·ε from δ₀ ~ U[−ε, ε]ᵈ,
``theorybench.attacks``), each from its own start. With δ_r the end of run r, δ_r⁻ its
iterate one step earlier, L_r = L(θ; x + δ_r, y) and g_r = ∇_θ L(θ; x + δ_r, y):

    distance (measure = pairs)   mean over pairs r < s of ‖δ_r − δ_s‖₂ / ½(‖δ_r‖₂ + ‖δ_s‖₂)
    distance (measure = jitter)  mean over r of ‖δ_r − δ_r⁻‖₂ / ‖δ_r‖₂   (PGD's own last step:
                                 the floor below which two ends cannot be told apart)
    loss_cv                      std_r L_r / mean_r L_r              (the ends' losses agree)
    loss_ratio                   mean_r L_r / L(θ; x, y)             (well above the clean loss)
    grad_cosine                  mean over pairs r < s of cos(g_r, g_s)

each averaged over the test examples (``loss_ratio`` as the ratio of the averages). The relative
distance is scale-free: 0 for one maximizer, √2 for ends at independent corners of the box.
Rows: two per (seed, ε), one per ``measure``; the other columns repeat on both, and
``largest_eps`` is 1 on the rows of the sweep's largest ε (the radius rules read, whatever the
profile's radii), else 0. Streams: the
split, the initialization, the minibatch order and the starts come from
``perturbation_uniqueness/data``, ``/init``, ``/order`` and ``/starts`` (one generator per
seed), so a seed's rows do not depend on the other seeds of its cell.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import pandas as pd
import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict, Field
from torch import nn
from torch.func import functional_call, grad, vmap

from theorybench import attacks
from theorybench.data.digits import load_digits_tensors
from theorybench.models.cnn import SeedCNN
from theorybench.models.mlp import SeedMLP
from theorybench.registry import experiment
from theorybench.splits import epoch_orders, minibatches, random_split
from theorybench.streams import stream, streams


class PerturbationUniquenessParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    dataset: Literal["digits", "mnist", "cifar10"] = Field(
        "digits", description="digits: scikit-learn's 8×8 images; mnist, cifar10: read from a "
        "local torchvision folder (data_root)")
    data_root: str | None = Field(None, description="torchvision folder (mnist, cifar10)",
                                  json_schema_extra={"data_root": True})
    n_train: int = Field(1000, ge=1, description="training examples per seed")
    n_test: int = Field(100, ge=2, description="attacked test examples per seed")
    model: Literal["mlp", "cnn"] = "mlp"
    hidden: list[int] = Field([64], description="MLP hidden widths ([]: linear softmax model)")
    epochs: int = Field(30, ge=1)
    batch_size: int = Field(64, ge=1)
    lr: float = Field(3e-3, gt=0, description="Adam step")
    eps: list[float] = Field([0.03, 0.1, 0.3], min_length=1,
                             description="ℓ∞ radii ε (pixels in [0, 1])")
    starts: int = Field(8, ge=2, description="random starts R per example")
    steps: int = Field(20, ge=2, description="sign-ascent steps of each PGD run")
    step_size: float = Field(0.25, gt=0, description="α in units of ε")


def _load(p: PerturbationUniquenessParams) -> tuple[torch.Tensor, torch.Tensor]:
    """All images (N, C, H, W) in [0, 1] and labels of the data set."""
    if p.dataset == "digits":
        x, y = load_digits_tensors()
        return x.view(-1, 1, 8, 8), y
    from theorybench.data.torchvision_local import load_local

    if not p.data_root:
        raise ValueError(f"dataset {p.dataset} is read from a local torchvision folder: set the "
                         "data_root parameter (theorybench never downloads data)")
    x_tr, y_tr = load_local(p.dataset, p.data_root, train=True)
    x_te, y_te = load_local(p.dataset, p.data_root, train=False)
    return torch.cat([x_tr, x_te]), torch.cat([y_tr, y_te])


def _network(p: PerturbationUniquenessParams, seeds: Sequence[int],
             input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    gens = streams(seeds, "perturbation_uniqueness/init")
    if p.model == "cnn":
        return SeedCNN(gens, input_shape, num_classes)  # type: ignore[arg-type]
    return SeedMLP(gens, [math.prod(input_shape), *p.hidden, num_classes])


def train(model: nn.Module, p: PerturbationUniquenessParams, seeds: Sequence[int],
          x: torch.Tensor, y: torch.Tensor) -> None:
    """Adam on each seed's mean clean cross-entropy; ``x`` (S, n, *input), ``y`` (S, n)."""
    opt = torch.optim.Adam(model.parameters(), lr=p.lr)
    orders = epoch_orders(streams(seeds, "perturbation_uniqueness/order"), p.epochs, x.shape[1])
    rows = torch.arange(len(seeds)).unsqueeze(-1)
    for epoch in range(p.epochs):
        for idx in minibatches(orders[:, epoch], p.batch_size):
            loss = attacks.cross_entropy(model(x[rows, idx]), y[rows, idx]).mean(1).sum()
            opt.zero_grad()
            loss.backward()
            opt.step()


GRAD_CHUNK = 32
"""Examples whose per-example gradients are held at once (memory: S · chunk · P floats)."""


def per_example_grads(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """∇_θ L(θ; x_i, y_i) of every seed's network for every example, flattened: (S, B, P)."""
    params = {name: w.detach() for name, w in model.named_parameters()}

    def loss_of(params: dict[str, torch.Tensor], xi: torch.Tensor, yi: torch.Tensor
                ) -> torch.Tensor:  # one example per seed: xi (S, *input), yi (S,)
        logits = functional_call(model, params, (xi.unsqueeze(1),))
        return F.cross_entropy(logits[:, 0], yi, reduction="sum")

    grads = vmap(grad(loss_of), in_dims=(None, 1, 1))(params, x, y)  # each (B, S, ...)
    return torch.cat([g.movedim(0, 1).flatten(2) for g in grads.values()], dim=-1)


def mean_pair_cosine(model: nn.Module, x: torch.Tensor, y: torch.Tensor,
                     deltas: Sequence[torch.Tensor]) -> torch.Tensor:
    """Per example, the mean over pairs r < s of cos(g_r, g_s), g_r = ∇_θ L(θ; x + δ_r, y):
    with u_r = g_r / ‖g_r‖, Σ_{r<s} u_r·u_s = (‖Σ_r u_r‖² − R) / 2, so only Σ_r u_r is held,
    ``GRAD_CHUNK`` examples at a time. Returns (S, B)."""
    r, out = len(deltas), []
    for start in range(0, x.shape[1], GRAD_CHUNK):
        part = slice(start, start + GRAD_CHUNK)
        total = torch.zeros(())
        for delta in deltas:
            g = per_example_grads(model, (x + delta)[:, part], y[:, part])
            total = total + g / g.norm(dim=-1, keepdim=True).clamp_min(1e-30)
        out.append((total.pow(2).sum(-1) - r) / (r * (r - 1)))
    return torch.cat(out, dim=1)


def _pair_mean(values: torch.Tensor) -> torch.Tensor:
    """Mean over pairs r < s of a (R, R, ...) array."""
    r = values.shape[0]
    upper = torch.triu_indices(r, r, offset=1)
    return values[upper[0], upper[1]].mean(0)


def measure(model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float,
            p: PerturbationUniquenessParams, gens: Sequence[torch.Generator]
            ) -> dict[str, torch.Tensor]:
    """The module docstring's per-seed statistics at radius ``eps``, each of shape (S,)."""
    alpha = p.step_size * eps
    ends, before, losses = [], [], []
    for _ in range(p.starts):
        start = attacks.uniform_start(x, eps, gens)
        prev = attacks.sign_ascent(model, x, y, attacks.cross_entropy, eps=eps, alpha=alpha,
                                   steps=p.steps - 1, delta=start)
        end = attacks.sign_ascent(model, x, y, attacks.cross_entropy, eps=eps, alpha=alpha,
                                  steps=1, delta=prev)
        with torch.no_grad():
            losses.append(attacks.cross_entropy(model(x + end), y))
        ends.append(end)
        before.append(prev.flatten(2))
    cosine = mean_pair_cosine(model, x, y, ends)                 # (S, B)
    d = torch.stack([end.flatten(2) for end in ends])            # (R, S, B, D)
    norms = d.norm(dim=-1)                                       # (R, S, B)
    apart = (d.unsqueeze(1) - d.unsqueeze(0)).norm(dim=-1)       # (R, R, S, B)
    scale = 0.5 * (norms.unsqueeze(1) + norms.unsqueeze(0))
    pairs = _pair_mean(apart / scale.clamp_min(1e-30))           # (S, B)
    jitter = ((d - torch.stack(before)).norm(dim=-1) / norms.clamp_min(1e-30)).mean(0)
    loss = torch.stack(losses)                                   # (R, S, B)
    with torch.no_grad():
        clean = attacks.cross_entropy(model(x), y)
    return {
        "pairs": pairs.mean(-1), "jitter": jitter.mean(-1),
        "loss_cv": (loss.std(0) / loss.mean(0).clamp_min(1e-30)).mean(-1),
        "loss_ratio": loss.mean(0).mean(-1) / clean.mean(-1).clamp_min(1e-30),
        "grad_cosine": cosine.mean(-1),
    }


@experiment(
    "perturbation_uniqueness",
    family="adversarial",
    params=PerturbationUniquenessParams,
    columns=("eps", "largest_eps", "measure", "distance", "loss_cv", "loss_ratio",
             "grad_cosine", "clean_acc"),
    example={"n_train": 40, "n_test": 4, "epochs": 1, "eps": [0.1], "starts": 2, "steps": 2,
             "hidden": [8]},
    cost=lambda p: p.epochs * p.n_train
    + len(p.eps) * p.starts * p.n_test * (p.steps + 2 * sum(p.hidden or [10])),
)
def perturbation_uniqueness(p: PerturbationUniquenessParams, seeds: Sequence[int],
                            device: torch.device) -> pd.DataFrame:
    """Two rows per (seed, ε) (module docstring)."""
    x_all, y_all = _load(p)
    if p.n_train + p.n_test > len(y_all):
        raise ValueError(f"{p.dataset} has {len(y_all)} images; the split needs "
                         f"{p.n_train + p.n_test}")
    splits = [random_split(len(y_all), (p.n_train, p.n_test),
                           stream(s, "perturbation_uniqueness/data")) for s in seeds]
    tr = torch.stack([a for a, _ in splits])
    te = torch.stack([b for _, b in splits])
    x_all, y_all = x_all.to(device), y_all.to(device)
    model = _network(p, seeds, tuple(x_all.shape[1:]), int(y_all.max()) + 1).to(device)
    train(model, p, seeds, x_all[tr], y_all[tr])
    model.requires_grad_(False)
    x, y = x_all[te], y_all[te]
    with torch.no_grad():
        clean_acc = attacks.correct(model, x, y).double().mean(1).cpu().numpy()
    gens = streams(seeds, "perturbation_uniqueness/starts")
    tables = []
    for eps in p.eps:
        stats = {k: v.detach().cpu().double().numpy() for k, v in
                 measure(model, x, y, eps, p, gens).items()}
        common = {"seed": list(seeds), "eps": eps, "largest_eps": int(eps == max(p.eps)),
                  "loss_cv": stats["loss_cv"],
                  "loss_ratio": stats["loss_ratio"], "grad_cosine": stats["grad_cosine"],
                  "clean_acc": clean_acc}
        for name in ("pairs", "jitter"):
            tables.append(pd.DataFrame({**common, "measure": name, "distance": stats[name]}))
    out = pd.concat(tables, ignore_index=True)
    return out.sort_values(["seed", "eps", "measure"], kind="stable").reset_index(drop=True)
