"""Adversarial training: robust overfitting, BETA-AT, catastrophic overfitting, Danskin's corollary.

Claims:

1. **Robust overfitting** (Rice, Wong, Kolter, "Overfitting in adversarially robust deep
   learning", ICML 2020): under PGD adversarial training the robust test accuracy peaks (after a
   learning-rate decay) and then declines while the robust training accuracy keeps rising.
2. **BETA-AT does not overfit robustly** (Robey, Latorre, Pappas, Hassani, Cevher, "Adversarial
   training should be cast as a non-zero-sum game", 2023): training on the best targeted margin
   attack keeps best ≈ last robust accuracy (CIFAR-10: PGD¹⁰ 43.64/40.21, BETA-AT¹⁰ 44.54/44.36).
3. **Catastrophic overfitting** (Wong, Rice, Kolter, "Fast is better than free", ICLR 2020): at
   large ε, FGSM training's accuracy against multi-step PGD collapses while its accuracy against
   FGSM stays high.
4. **Danskin's corollary needs a unique maximizer** (Latorre, Krawczuk, Dadi, Pethick, Cevher,
   ICLR 2023): for f(x) = max_{δ∈[−1,1]} xδ = |x|, at x = 0 the direction −∇ₓΦ(0, δ*) for a
   maximizer δ* ≠ 0 increases f.

Kind ``adversarial_training`` trains, for each method in ``methods`` (family ``at-method``,
e.g. ``theorybench.methods.adversarial``), S seed-batched networks on
``min_θ mean_i L_method(θ; x_i, y_i)``
and, as Rice et al. do, evaluates the validation split after every epoch and keeps each seed's
best checkpoint by robust validation accuracy (early stopping; the validation attack is the
evaluation PGD below with ``val_steps`` steps, by default ``eval_steps``); every ``eval_every``
epochs (and at the last one) it also evaluates a training subset and the test split:

    clean accuracy  = mean_i 1[argmax h(x_i) = y_i]
    robust accuracy = mean_i 1[argmax h(x_i^adv) = y_i],   x^adv from PGD (``eval_steps`` steps,
                      ``eval_restarts`` restarts alternating the ``eval_losses``): a stronger
                      attack than the training one
    FGSM accuracy   = the same with one random-start FGSM step of the training FGSM size
    AutoAttack      = robust accuracy under ``torchattacks.AutoAttack`` (``autoattack: true``;
                      best checkpoint and last epoch only).

The seed fixes the split, the label noise, the initialization, the minibatch order and the
attacks' random starts (independently of the method, so methods are paired by seed). Label noise
replaces the labels of a fraction ``label_noise`` of the training examples by a uniformly drawn
different class; validation and test labels stay clean. Training accuracies use the training
labels (noisy ones included).

Table layout (column ``kind``):

* ``kind = "epoch"``: one row per (method, seed, epoch) with ``epoch`` (1-based), ``lr``,
  ``train_loss`` (mean minibatch loss of the epoch), ``clean_val``, ``robust_val`` and, on the
  ``eval_every`` epochs and the last, ``clean_train``, ``robust_train``, ``clean_test``,
  ``robust_test``, ``fgsm_test`` (NaN on the other epochs).
* ``kind = "summary"``: one row per (method, seed), ``epoch`` = the last epoch. With b the best
  epoch by robust validation accuracy (the first one on ties; its checkpoint is evaluated at
  the end) and T the last: ``best_epoch`` = b, ``robust_best`` = robust_test(b),
  ``robust_last`` = robust_test(T), ``robust_gap`` = robust_best − robust_last (the
  robust-overfitting gap), likewise ``clean_best``, ``clean_last``, ``clean_gap`` and
  ``aa_best``, ``aa_last``, ``aa_gap`` (AutoAttack; columns present only with ``autoattack``);
  ``robust_train_rise`` = robust_train(T) − robust_train(b); ``fgsm_last`` = fgsm_test(T);
  ``fgsm_pgd_gap`` = fgsm_test(T) − robust_test(T).

Columns a row kind does not use are NaN. Kind ``danskin_direction`` is documented on its function.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from typing import Literal

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict, Field, field_validator
from torch import nn
from torch.func import functional_call

from theorybench import attacks
from theorybench.attacks import ThreatModel
from theorybench.data.torchvision_local import image_pool
from theorybench.methods.adversarial import FAMILY as AT_METHODS
from theorybench.models.cnn import SeedCNN
from theorybench.models.mlp import SeedMLP
from theorybench.models.resnet import PreActResNet18, SeedEnsemble
from theorybench.registry import experiment, get_method, methods
from theorybench.splits import minibatches, random_split
from theorybench.streams import stream, stream_seed, streams

EPOCH_COLUMNS = ("lr", "train_loss", "clean_train", "robust_train", "clean_val", "robust_val",
                 "clean_test", "robust_test", "fgsm_test")
SUMMARY_COLUMNS = ("best_epoch", "clean_best", "clean_last", "clean_gap", "robust_best",
                   "robust_last", "robust_gap", "robust_train_rise", "fgsm_last", "fgsm_pgd_gap")
AUTOATTACK_COLUMNS = ("aa_best", "aa_last", "aa_gap")
"""Summary columns added only with ``autoattack: true`` (not declared: a declared column that is
NaN in every row would count as diverged)."""
COLUMNS = ("method", "kind", "epoch", *EPOCH_COLUMNS, *SUMMARY_COLUMNS)

CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2471, 0.2435, 0.2616)


class AdversarialTrainingParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    methods: list[str] = Field(["pgd"], min_length=1,
                               description="adversarial-training methods (family at-method)")
    dataset: Literal["digits", "cifar10"] = Field("digits", description="digits: 8×8, in [0, 1]")
    data_root: str | None = Field(None, description="torchvision folder holding cifar10",
                                  json_schema_extra={"data_root": True})
    n_train: int | None = Field(600, ge=1, description="training examples (None: all left)")
    n_val: int = Field(300, ge=1, description="held-out validation examples (clean labels)")
    n_test: int | None = Field(None, ge=1, description="test examples (None: all available)")
    n_train_eval: int = Field(300, ge=1, description="training examples evaluated for curves")
    label_noise: float = Field(0.0, ge=0.0, lt=1.0, description="fraction of flipped labels")
    model: Literal["mlp", "cnn", "preact_resnet18"] = "mlp"
    hidden: list[int] = Field([512, 512], description="MLP hidden widths")
    epochs: int = Field(120, ge=1)
    batch_size: int = Field(128, ge=1)
    optimizer: Literal["sgd", "adam"] = "sgd"
    lr: float = Field(0.1, gt=0, description="peak learning rate")
    momentum: float = Field(0.9, ge=0, lt=1)
    weight_decay: float = Field(5e-4, ge=0)
    schedule: Literal["piecewise", "cyclic", "constant"] = Field(
        "piecewise", description="piecewise: × gamma at each milestone; cyclic: 0 → lr → 0")
    milestones: list[float] = Field([0.5, 0.75], description="fractions of training")
    gamma: float = Field(0.1, gt=0, le=1)
    augment: bool = Field(False, description="random crop (pad 4) and flip, for CIFAR-10")
    eps: float = Field(0.1, gt=0, description="ℓ∞ radius ε (inputs in [0, 1])")
    attack_steps: int = Field(7, ge=1, description="steps of PGD / BETA / TRADES in training")
    step_size: float = Field(0.25, gt=0, description="their step α, in units of ε")
    fgsm_step_size: float = Field(1.25, gt=0, description="FGSM step, in units of ε")
    eval_steps: int = Field(10, ge=1, description="PGD steps of the evaluation attack")
    val_steps: int | None = Field(None, ge=1, description="PGD steps of the validation attack "
                                  "that picks the best epoch (None: eval_steps)")
    eval_restarts: int = Field(2, ge=1)
    eval_step_size: float = Field(0.25, gt=0, description="evaluation step, in units of ε")
    eval_losses: list[Literal["ce", "margin"]] = Field(["ce", "margin"], min_length=1)
    eval_every: int = Field(1, ge=1, description="evaluate every k epochs (and the last)")
    eval_batch: int = Field(1000, ge=1, description="examples per seed per evaluation chunk")
    autoattack: bool = Field(False, description="also evaluate best and last with AutoAttack "
                             "(torchattacks, a development dependency)")

    @field_validator("methods")
    @classmethod
    def _known_methods(cls, value: list[str]) -> list[str]:
        known = methods(AT_METHODS)
        unknown = [m for m in value if m not in known]
        if unknown:
            raise ValueError(f"unknown methods {unknown}; known: {sorted(known)}")
        return value


class _Data:
    """The example pool and, per seed, index sets (S, n) into it and the training labels."""

    def __init__(self, p: AdversarialTrainingParams, seeds: Sequence[int],
                 device: torch.device) -> None:
        self.x, self.y, n_fixed = image_pool(p.dataset, p.data_root)
        # digits: one pool split per seed; a torchvision set: its own training and test sets
        pool = torch.arange(len(self.y) if n_fixed is None else n_fixed)
        test_pool = None if n_fixed is None else torch.arange(n_fixed, len(self.y))
        self.num_classes = int(self.y.max()) + 1
        self.input_shape = tuple(self.x.shape[1:])
        train, val, test, labels = [], [], [], []
        for seed in seeds:
            g = stream(seed, "adversarial/data")
            n_train = p.n_train or len(pool) - p.n_val - (p.n_test or 0) * (test_pool is None)
            need = p.n_val + n_train + (p.n_test or 0) * (test_pool is None)
            if need > len(pool) or n_train < 1:
                raise ValueError(f"{p.dataset} has {len(pool)} examples; the split needs {need}")
            va, tr, rest = random_split(len(pool), (p.n_val, n_train, None), g)
            val.append(pool[va])
            train.append(pool[tr])
            rest = pool[rest] if test_pool is None else test_pool
            test.append(rest[: p.n_test] if p.n_test else rest)
            if len(test[-1]) == 0:
                raise ValueError(f"{p.dataset}: no examples left for the test split")
            y_train = self.y[train[-1]].clone()
            flip = torch.rand(n_train, generator=g) < p.label_noise
            shift = torch.randint(1, self.num_classes, (n_train,), generator=g)
            labels.append(torch.where(flip, (y_train + shift) % self.num_classes, y_train))
        self.train, self.val = torch.stack(train), torch.stack(val)
        self.test = torch.stack(test)
        self.train_labels = torch.stack(labels)
        self.device = device

    def batch(self, idx: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.x[idx].to(self.device), labels.to(self.device)


def _model(p: AdversarialTrainingParams, seeds: Sequence[int], data: _Data) -> nn.Module:
    """The seed-batched network, each seed's initialized from its ``adversarial/init`` stream."""
    if p.model == "mlp":
        sizes = [math.prod(data.input_shape), *p.hidden, data.num_classes]
        return SeedMLP(streams(seeds, "adversarial/init"), sizes)
    if p.model == "cnn":
        return SeedCNN(streams(seeds, "adversarial/init"), data.input_shape,  # type: ignore[arg-type]
                       data.num_classes)
    return SeedEnsemble([stream_seed(s, "adversarial/init") for s in seeds],
                        lambda: PreActResNet18(data.num_classes, mean=CIFAR10_MEAN,
                                               std=CIFAR10_STD))


def learning_rate(p: AdversarialTrainingParams, t: float) -> float:
    """Learning rate of the step that ends at training time ``t`` (in epochs, 0 < t ≤ epochs):
    the cyclic schedule is read at ``t``; the piecewise one changes after a milestone epoch ends
    (Rice et al.: 0.1 until epoch 100, 0.01 until 150, then 0.001, with milestones 0.5, 0.75)."""
    if p.schedule == "constant":
        return p.lr
    if p.schedule == "cyclic":
        half = p.epochs / 2
        return p.lr * (t / half if t <= half else max(0.0, (p.epochs - t) / half))
    passed = sum(t > m * p.epochs for m in p.milestones)
    return p.lr * p.gamma**passed


def _augment(x: torch.Tensor, gens: Sequence[torch.Generator], pad: int = 4) -> torch.Tensor:
    """Random crop after zero padding by ``pad`` and random horizontal flip, per example."""
    s, b, _, h, w = x.shape
    draws = torch.stack([torch.randint(0, 2 * pad + 1, (2, b), generator=g) for g in gens])
    flips = torch.stack([torch.rand(b, generator=g) < 0.5 for g in gens]).to(x.device)
    padded = F.pad(x, (pad, pad, pad, pad))
    rows = (draws[:, 0, :, None] + torch.arange(h)).to(x.device)  # (S, B, H)
    cols = (draws[:, 1, :, None] + torch.arange(w)).to(x.device)  # (S, B, W)
    si = torch.arange(s, device=x.device)[:, None, None, None]
    bi = torch.arange(b, device=x.device)[None, :, None, None]
    crop = padded.permute(0, 1, 3, 4, 2)[si, bi, rows[..., :, None], cols[..., None, :]]
    crop = crop.permute(0, 1, 4, 2, 3)
    return torch.where(flips[:, :, None, None, None], crop.flip(-1), crop)


def _evaluate(
    model: nn.Module, data: _Data, idx: torch.Tensor, labels: torch.Tensor,
    p: AdversarialTrainingParams, gens: Sequence[torch.Generator], fgsm: bool,
    steps: int | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Clean, robust (PGD with ``steps``, by default ``eval_steps``) and FGSM accuracy per seed
    on the index sets ``idx`` (S, n)."""
    eps = p.eps
    hits = np.zeros((3, idx.shape[0]))
    for start in range(0, idx.shape[1], p.eval_batch):
        x, y = data.batch(idx[:, start : start + p.eval_batch],
                          labels[:, start : start + p.eval_batch])
        hits[0] += attacks.correct(model, x, y).sum(1).cpu().numpy()
        x_adv = attacks.pgd(model, x, y, eps=eps, alpha=p.eval_step_size * eps,
                            steps=steps or p.eval_steps, restarts=p.eval_restarts,
                            losses=p.eval_losses, generators=gens)
        hits[1] += attacks.correct(model, x_adv, y).sum(1).cpu().numpy()
        if fgsm:
            x_f = attacks.fgsm(model, x, y, eps=eps, alpha=p.fgsm_step_size * eps,
                               generators=gens)
            hits[2] += attacks.correct(model, x_f, y).sum(1).cpu().numpy()
    acc = hits / idx.shape[1]
    return acc[0], acc[1], acc[2] if fgsm else np.full(idx.shape[0], np.nan)


class _BestCheckpoint:
    """Each seed's weights at its best epoch so far by robust validation accuracy (Rice et al.'s
    early stopping: the first epoch on ties), kept in one model of the seed-batched shape."""

    def __init__(self, model: nn.Module, seeds: int) -> None:
        self.model = copy.deepcopy(model)
        self.score = np.full(seeds, -np.inf)
        self.epoch = np.zeros(seeds, dtype=int)

    def update(self, model: nn.Module, robust_val: np.ndarray, epoch: int) -> None:
        better = np.flatnonzero(robust_val > self.score)
        if better.size == 0:
            return
        self.score[better], self.epoch[better] = robust_val[better], epoch
        source = model.state_dict()
        with torch.no_grad():
            for key, value in self.model.state_dict().items():
                for i in better:
                    if isinstance(model, SeedEnsemble):  # per-seed networks nets.<i>.*
                        if key.startswith(f"nets.{i}."):
                            value.copy_(source[key])
                    else:  # every tensor has the seed as its leading dimension
                        value[i].copy_(source[key][i])


def _autoattack(
    model: nn.Module, data: _Data, p: AdversarialTrainingParams, seeds: Sequence[int]
) -> np.ndarray:
    """Robust test accuracy per seed under AutoAttack (Croce & Hein ICML 2020, ``standard``:
    APGD-CE, APGD-T, FAB-T, Square; ``torchattacks.AutoAttack``, a development dependency imported
    here only). Its random starts are seeded per seed from the ``adversarial/autoattack`` stream's
    seed; the global torch generator it reseeds is restored afterwards."""
    import torchattacks  # dev dependency: only profiles that ask for AutoAttack need it

    out = np.zeros(len(seeds))
    model.eval()
    for i, seed in enumerate(seeds):
        net = _one_seed(model, i)
        attack = torchattacks.AutoAttack(net, norm="Linf", eps=p.eps, version="standard",
                                         n_classes=data.num_classes,
                                         seed=stream_seed(seed, "adversarial/autoattack"))
        hits = 0
        for start in range(0, data.test.shape[1], p.eval_batch):
            idx = data.test[i, start : start + p.eval_batch]
            x, y = data.x[idx].to(data.device), data.y[idx].to(data.device)
            with torch.random.fork_rng(devices=[]):
                x_adv = attack(x, y)
            with torch.no_grad():
                hits += int((net(x_adv).argmax(-1) == y).sum())
        out[i] = hits / data.test.shape[1]
    return out


def _one_seed(model: nn.Module, i: int) -> nn.Module:
    """Seed ``i`` of a seed-batched classifier as an ordinary one, (B, *input) → (B, K), that
    computes that seed's network only (an attack calls it thousands of times)."""
    if isinstance(model, SeedEnsemble):
        return model.nets[i]
    return _OneSeed(model, i)


class _OneSeed(nn.Module):
    """A seed-batched network (every parameter has the seed as its leading dimension) run with
    seed ``i``'s parameters alone, detached: an attack needs gradients for its inputs only."""

    def __init__(self, model: nn.Module, i: int) -> None:
        super().__init__()
        self.model = model
        self.params = {name: p.detach()[i : i + 1] for name, p in model.named_parameters()}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return functional_call(self.model, self.params, (x.unsqueeze(0),))[0]


def _train_method(
    name: str, p: AdversarialTrainingParams, seeds: Sequence[int], data: _Data,
    device: torch.device,
) -> list[dict[str, float | int | str]]:
    method = get_method(AT_METHODS, name)
    model = _model(p, seeds, data).to(device)
    params = list(model.parameters())
    if p.optimizer == "sgd":
        opt: torch.optim.Optimizer = torch.optim.SGD(params, lr=p.lr, momentum=p.momentum,
                                                     weight_decay=p.weight_decay)
    else:
        opt = torch.optim.Adam(params, lr=p.lr, weight_decay=p.weight_decay)
    threat = ThreatModel(eps=p.eps, step_size=p.step_size * p.eps, steps=p.attack_steps,
                         fgsm_step_size=p.fgsm_step_size * p.eps, num_classes=data.num_classes)
    order_gens = streams(seeds, "adversarial/order")
    train_gens = streams(seeds, "adversarial/attack")
    eval_gens = streams(seeds, "adversarial/eval")
    n_train = data.train.shape[1]
    n_eval = min(p.n_train_eval, n_train)
    train_idx, train_lab = data.train[:, :n_eval], data.train_labels[:, :n_eval]
    steps_per_epoch = math.ceil(n_train / p.batch_size)
    best = _BestCheckpoint(model, len(seeds))
    rows: list[dict[str, float | int | str]] = []
    for epoch in range(1, p.epochs + 1):
        model.train()
        order = torch.stack([torch.randperm(n_train, generator=g) for g in order_gens])
        losses = torch.zeros(len(seeds))
        for step, pick in enumerate(minibatches(order, p.batch_size)):
            lr = learning_rate(p, epoch - 1 + (step + 1) / steps_per_epoch)
            for group in opt.param_groups:
                group["lr"] = lr
            x, y = data.batch(data.train.gather(1, pick), data.train_labels.gather(1, pick))
            if p.augment:
                x = _augment(x, train_gens)
            per_seed = method(model, x, y, threat, train_gens).mean(1)
            opt.zero_grad(set_to_none=True)
            per_seed.sum().backward()
            opt.step()
            losses += per_seed.detach().cpu() / steps_per_epoch
        model.eval()
        c_va, r_va, _ = _evaluate(model, data, data.val, data.y[data.val], p, eval_gens, False,
                                  p.val_steps)
        best.update(model, r_va, epoch)
        nan = np.full(len(seeds), np.nan)
        c_tr = r_tr = c_te = r_te = f_te = nan
        if epoch % p.eval_every == 0 or epoch == p.epochs:
            c_tr, r_tr, _ = _evaluate(model, data, train_idx, train_lab, p, eval_gens, False)
            c_te, r_te, f_te = _evaluate(model, data, data.test, data.y[data.test], p,
                                         eval_gens, True)
        for i, seed in enumerate(seeds):
            rows.append({"seed": seed, "method": name, "kind": "epoch", "epoch": epoch,
                         "lr": lr, "train_loss": float(losses[i]),
                         "clean_train": c_tr[i], "robust_train": r_tr[i], "clean_val": c_va[i],
                         "robust_val": r_va[i], "clean_test": c_te[i], "robust_test": r_te[i],
                         "fgsm_test": f_te[i]})
    best.model.eval()
    bc_tr, br_tr, _ = _evaluate(best.model, data, train_idx, train_lab, p, eval_gens, False)
    bc_te, br_te, _ = _evaluate(best.model, data, data.test, data.y[data.test], p, eval_gens,
                                False)
    aa_best = aa_last = np.full(len(seeds), np.nan)
    if p.autoattack:
        aa_best = _autoattack(best.model, data, p, seeds)
        aa_last = _autoattack(model, data, p, seeds)
    for i, seed in enumerate(seeds):
        rows.append(_summary_row(
            seed, name, p.epochs, int(best.epoch[i]),
            best={"clean_test": bc_te[i], "robust_test": br_te[i], "robust_train": br_tr[i],
                  "aa_test": aa_best[i]},
            last={"clean_test": c_te[i], "robust_test": r_te[i], "robust_train": r_tr[i],
                  "fgsm_test": f_te[i], "aa_test": aa_last[i]}))
    return rows


def _summary_row(
    seed: int, name: str, epoch: int, best_epoch: int, best: dict[str, float],
    last: dict[str, float],
) -> dict[str, float | int | str]:
    """One summary row from the best checkpoint's and the last epoch's accuracies."""
    return {
        "seed": seed, "method": name, "kind": "summary", "epoch": epoch,
        "best_epoch": best_epoch,
        "clean_best": best["clean_test"], "clean_last": last["clean_test"],
        "clean_gap": best["clean_test"] - last["clean_test"],
        "robust_best": best["robust_test"], "robust_last": last["robust_test"],
        "robust_gap": best["robust_test"] - last["robust_test"],
        "robust_train_rise": last["robust_train"] - best["robust_train"],
        "fgsm_last": last["fgsm_test"],
        "fgsm_pgd_gap": last["fgsm_test"] - last["robust_test"],
        "aa_best": best.get("aa_test", np.nan), "aa_last": last.get("aa_test", np.nan),
        "aa_gap": best.get("aa_test", np.nan) - last.get("aa_test", np.nan),
    }


def summarize(curves: pd.DataFrame) -> pd.DataFrame:
    """Summary rows (one per method and seed) from ``kind == "epoch"`` rows that carry test
    accuracies at every epoch (the experiment itself evaluates the best checkpoint instead)."""
    out = []
    for (name, seed), g in curves.groupby(["method", "seed"], sort=False):
        g = g.sort_values("epoch")
        b = g.loc[g["robust_val"].idxmax()]
        last = g.iloc[-1]
        out.append(_summary_row(seed, name, int(last["epoch"]), int(b["epoch"]), b.to_dict(),
                                last.to_dict()))
    return pd.DataFrame(out)


@experiment(
    "adversarial_training",
    family="adversarial",
    params=AdversarialTrainingParams,
    columns=COLUMNS,
    example={"methods": ["standard", "pgd"], "n_train": 32, "n_val": 16, "n_test": 16,
             "n_train_eval": 16, "hidden": [16], "epochs": 2, "batch_size": 16,
             "attack_steps": 2, "eval_steps": 2, "eval_restarts": 1},
)
def adversarial_training(
    p: AdversarialTrainingParams, seeds: Sequence[int], device: torch.device
) -> pd.DataFrame:
    """Per-epoch curves and best/last summaries of each training method (see module docstring)."""
    data = _Data(p, seeds, device)
    curves = pd.DataFrame(
        [row for name in p.methods for row in _train_method(name, p, seeds, data, device)]
    )
    curves = pd.concat([curves[curves["kind"] == "epoch"], curves[curves["kind"] == "summary"]],
                       ignore_index=True)
    extra = AUTOATTACK_COLUMNS if p.autoattack else ()
    return curves.reindex(columns=["seed", *COLUMNS, *extra])


class DanskinParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    x0: float = Field(0.0, description="the point x where the direction is tested")
    radius: float = Field(1.0, gt=0, description="δ ranges over [−radius, radius]")
    step: float = Field(1e-3, gt=0, description="t in f(x0 − t·g) − f(x0)")
    inner_steps: int = Field(100, ge=0, description="projected gradient-ascent steps on δ")
    inner_lr: float = Field(0.1, gt=0)
    grid: int = Field(2001, ge=3, description="grid points of δ used to evaluate f")


@experiment(
    "danskin_direction",
    family="adversarial",
    params=DanskinParams,
    columns=("delta_star", "is_maximizer", "grad_x", "f_change", "slope", "ascent"),
    example={"inner_steps": 5},
)
def danskin_direction(p: DanskinParams, seeds: Sequence[int], device: torch.device) -> pd.DataFrame:
    """Is −∇ₓΦ(x0, δ*) a descent direction of f(x) = max_{|δ|≤r} Φ(x, δ), Φ(x, δ) = x·δ?

    Per seed: δ₀ ~ U[−r, r], then ``inner_steps`` projected gradient-ascent steps
    δ ← clip(δ + η ∂_δ Φ(x0, δ), −r, r) give δ* (at x0 = 0 every δ is a maximizer and the ascent
    does not move, so δ* is a random maximizer; for x0 ≠ 0 the maximizer r·sign(x0) is unique).
    With g = ∂ₓΦ(x0, δ*) by autograd and f evaluated by maximizing over a grid of δ containing
    ±r (exact here, Φ being linear in δ):

        f_change = f(x0 − t·g) − f(x0),   slope = f_change / t,   ascent = 1[f_change > 0],
        is_maximizer = 1[Φ(x0, δ*) ≥ f(x0) − 1e-9].

    Danskin's corollary predicts slope < 0 whenever g ≠ 0; at x0 = 0, f = |x| gives
    slope = |δ*| > 0 (Latorre et al. ICLR 2023).
    """
    def phi(x: torch.Tensor, delta: torch.Tensor) -> torch.Tensor:
        return x * delta

    def f(x: torch.Tensor) -> torch.Tensor:
        grid = torch.linspace(-p.radius, p.radius, p.grid, dtype=torch.float64)
        return phi(x[:, None], grid[None, :]).amax(1)

    start = torch.stack([torch.rand((), generator=g, dtype=torch.float64)
                         for g in streams(seeds, "adversarial/danskin")])
    delta = (2 * start - 1) * p.radius
    x0 = torch.full((len(seeds),), p.x0, dtype=torch.float64)
    for _ in range(p.inner_steps):
        d = delta.clone().requires_grad_(True)
        (grad_d,) = torch.autograd.grad(phi(x0, d).sum(), d)
        delta = (delta + p.inner_lr * grad_d).clamp(-p.radius, p.radius)
    x = x0.clone().requires_grad_(True)
    (g,) = torch.autograd.grad(phi(x, delta).sum(), x)
    change = f(x0 - p.step * g) - f(x0)
    is_max = phi(x0, delta) >= f(x0) - 1e-9
    return pd.DataFrame({
        "seed": list(seeds), "delta_star": delta.numpy(), "is_maximizer": is_max.numpy(),
        "grad_x": g.numpy(), "f_change": change.numpy(), "slope": (change / p.step).numpy(),
        "ascent": (change > 0).to(torch.int64).numpy(),
    })
