"""Visual addition: do polynomial nets extrapolate to unseen digit pairs better than ReLU nets?

Claim (Wu, Zhu, Liu, Chrysos, Cevher, "Extrapolation and spectral bias of neural nets with
Hadamard product: a polynomial net study", NeurIPS 2022; table "visual addition" of the CVPR 2023
tutorial): trained on images of two digits side by side labelled with their sum, and tested on
digit pairs never seen in training, polynomial nets (Π-nets, the CCP model of
``models/polynomial.py``: ``x₁ = σ(U₁ᵀz + b₁)``, ``xₙ = σ(Uₙᵀz + bₙ) ∗ xₙ₋₁ + xₙ₋₁``,
``f = Cᵀx_N + β``) have a higher rounding accuracy than ordinary networks, dense and
convolutional: NN dense 0.436 ± 0.065, PNN dense 0.554 ± 0.011, NN conv 0.617 ± 0.103, PNN conv
0.825 ± 0.109 (mean ± SD over three folds).

Set-up (Wu et al.'s ``extra/main_ad.py``, which reads folds 2, 4, 6 of pre-generated data, and
the data of Bloice, Roth, Holzinger, "Performing arithmetic using a neural network trained on
digit permutation pairs", ISMIS 2020, whose metrics it copies): an input is the concatenation of
two digit images (``H × 2W``), its target the sum ``a + b`` of their digits; of the 100 ordered
pairs ``(a, b)`` a fold holds out 10 (10-fold cross-validation over pairs); training images come
from the training pool, test images from the test pool; regression on the squared loss, scored by
the *rounding accuracy* ``mean_i [round(f(zᵢ)) = aᵢ + bᵢ]`` (``leeway_accuracy``: within ±1).

Kind ``visual_addition``, per seed (seeds batched in every model):

* the image pool: scikit-learn's 8×8 digits split at random into a training and a test pool
  (``train_fraction``), or MNIST's own training and test sets (``dataset: mnist``, a local
  torchvision folder);
* the split of the 100 ordered pairs (:func:`pair_split`): ``holdout: pairs`` holds out
  ``n_holdout_pairs`` pairs drawn at random (the paper's folds), ``holdout: sums`` every pair with
  ``a + b > max_train_sum`` (the sum itself beyond the training range);
* ``n_train`` training images cycling over the training pairs, each digit drawn at random from
  the training pool; three evaluation parts of ``n_test`` images: ``ood`` (held-out pairs, test
  pool), ``id`` (training pairs, test pool: unseen images of seen pairs) and ``train`` (the first
  training images);
* the models (``models``), each trained from its own initialization stream on the same images in
  the same minibatch order: ``nn_dense`` (ReLU MLP with ``degree`` hidden layers of ``width``),
  ``pnn_dense`` (CCP of degree ``degree``, width ``width``), ``nn_conv`` (``degree`` composed ReLU
  convolutions, :class:`~theorybench.models.cnn.SeedConvNet`), ``pnn_conv`` (convolutional CCP,
  :class:`~theorybench.models.polynomial.ConvCCP`); ``pnn_add_*`` are the PNNs with the Hadamard
  product replaced by a sum (same parameters, ``combine: add``).

Rows: one per seed, model and part, with ``accuracy``, ``leeway_accuracy``, ``mse`` and the
model's parameter count ``n_params`` (``arch``: dense or conv; ``net``: nn, pnn or pnn_add).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import numpy as np
import pandas as pd
import torch
from pydantic import BaseModel, ConfigDict, Field, model_validator
from torch import nn

from theorybench.data.torchvision_local import image_pool
from theorybench.experiments.extrapolation import adam_state, adam_update
from theorybench.models.cnn import SeedConvNet
from theorybench.models.mlp import Activation, SeedMLP
from theorybench.models.polynomial import CCP, ConvCCP
from theorybench.registry import experiment
from theorybench.splits import epoch_orders, random_split
from theorybench.streams import stream, streams

ModelName = Literal["nn_dense", "pnn_dense", "pnn_add_dense", "nn_conv", "pnn_conv",
                    "pnn_add_conv"]
MODELS: tuple[str, ...] = ("nn_dense", "pnn_dense", "pnn_add_dense", "nn_conv", "pnn_conv",
                           "pnn_add_conv")
PARTS = ("ood", "id", "train")
COLUMNS = ("model", "arch", "net", "part", "accuracy", "leeway_accuracy", "mse", "n_params")
ALL_PAIRS = torch.cartesian_prod(torch.arange(10), torch.arange(10))
"""The 100 ordered digit pairs (a, b), row 10a + b."""


class VisualAdditionParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    dataset: Literal["digits", "mnist"] = Field("digits", description="digits: scikit-learn's "
                                                "8×8 (no download); mnist: a local folder")
    data_root: str | None = Field(None, description="torchvision folder holding MNIST",
                                  json_schema_extra={"data_root": True})
    holdout: Literal["pairs", "sums"] = Field("pairs", description="pairs: n_holdout_pairs "
                                              "random ordered pairs held out (the paper's "
                                              "folds); sums: pairs with a + b > max_train_sum")
    n_holdout_pairs: int = Field(10, ge=1, le=50, description="held-out pairs (holdout: pairs)")
    max_train_sum: int = Field(12, ge=1, le=17, description="largest training sum (holdout: "
                               "sums)")
    train_fraction: float = Field(0.6, gt=0, lt=1, description="digits: share of the 1797 "
                                  "images in the training pool (the rest: test pool)")
    n_train: int = Field(1800, ge=1, description="training images (cycling over the pairs)")
    n_test: int = Field(500, ge=1, description="images per evaluation part")
    models: list[ModelName] = Field(default_factory=lambda: list(MODELS),
                                    description="networks trained on the same data")
    degree: int = Field(4, ge=1, description="PN degree N; NN: hidden (dense) or convolution "
                        "(conv) layers")
    width: int = Field(64, ge=1, description="dense: hidden units (NN) / factor width (PN)")
    conv_width: int = Field(16, ge=1, description="conv: channels per layer / factor")
    kernel: int = Field(3, ge=1, description="convolution size (odd)")
    activation: Activation = Field("relu", description="σ inside the PN recursion (Wu et "
                                   "al.'s code: ReLU)")
    optimizer: Literal["adam", "sgd"] = Field("adam", description="adam (cosine-decayed step) "
                                              "or SGD with Nesterov momentum (Wu et al.'s code)")
    lr: float = Field(1e-3, gt=0, description="step size")
    momentum: float = Field(0.9, ge=0, lt=1, description="SGD momentum")
    weight_decay: float = Field(0.0, ge=0, description="SGD weight decay (Wu et al.: 1e-5)")
    epochs: int = Field(30, ge=1, description="passes over the training images")
    batch_size: int = Field(64, ge=1, description="minibatch size")
    eval_batch: int = Field(1000, ge=1, description="images per evaluation forward pass")

    @model_validator(mode="after")
    def _check(self) -> VisualAdditionParams:
        if self.kernel % 2 == 0:
            raise ValueError(f"kernel must be odd (same padding), got {self.kernel}")
        if not self.models or len(set(self.models)) != len(self.models):
            raise ValueError("models must name at least one network, each once")
        return self


def pair_split(p: VisualAdditionParams, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Training and held-out digit pairs, (n, 2) each: ``n_holdout_pairs`` random ordered
    pairs held out, or (``holdout: sums``) every pair whose sum exceeds ``max_train_sum``."""
    if p.holdout == "sums":
        held = ALL_PAIRS.sum(1) > p.max_train_sum
        return ALL_PAIRS[~held], ALL_PAIRS[held]
    test, train = random_split(len(ALL_PAIRS), (p.n_holdout_pairs, None), gen)
    return ALL_PAIRS[train.sort().values], ALL_PAIRS[test.sort().values]


def _draw(pairs: torch.Tensor, n: int, pool: torch.Tensor, labels: torch.Tensor,
          gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Image indices (n, 2) into the pool: image i shows pair ``pairs[i mod len(pairs)]``, each
    digit a random image of that digit in ``pool``."""
    wanted = pairs[torch.arange(n) % len(pairs)]
    pick = torch.rand(n, 2, generator=gen)
    out = torch.empty(n, 2, dtype=torch.long)
    for digit in range(10):
        of_digit = pool[labels[pool] == digit]
        mask = wanted == digit
        if len(of_digit) == 0 and bool(mask.any()):
            raise ValueError(f"no image of digit {digit} in the pool the split draws from")
        out[mask] = of_digit[(pick[mask] * len(of_digit)).long().clamp_max(len(of_digit) - 1)]
    return out, wanted.sum(1)


class _Data:
    """The image pool (N, C, H, W), and per seed image indices (S, n, 2) and sums (S, n) of the
    training set and of each evaluation part."""

    def __init__(self, p: VisualAdditionParams, seeds: Sequence[int]) -> None:
        self.x, self.y, n_train = image_pool(p.dataset, p.data_root)
        n_pool = round(p.train_fraction * len(self.y)) if n_train is None else n_train
        parts: dict[str, list[tuple[torch.Tensor, torch.Tensor]]] = {
            name: [] for name in ("fit", *PARTS)}
        for seed in seeds:
            g = stream(seed, "visual_addition/data")
            if p.dataset == "digits":
                train_pool, test_pool = random_split(len(self.y), (n_pool, None), g)
            else:
                train_pool, test_pool = torch.arange(n_pool), torch.arange(n_pool, len(self.y))
            train_pairs, held_pairs = pair_split(p, g)
            fit = _draw(train_pairs, p.n_train, train_pool, self.y, g)
            parts["fit"].append(fit)
            parts["ood"].append(_draw(held_pairs, p.n_test, test_pool, self.y, g))
            parts["id"].append(_draw(train_pairs, p.n_test, test_pool, self.y, g))
            parts["train"].append((fit[0][: p.n_test], fit[1][: p.n_test]))
        self.parts = {name: (torch.stack([i for i, _ in v]), torch.stack([s for _, s in v]))
                      for name, v in parts.items()}
        c, h, w = self.x.shape[1:]
        self.input_shape = (int(c), int(h), 2 * int(w))

    def images(self, idx: torch.Tensor, device: torch.device) -> torch.Tensor:
        """Pair images (S, n, C, H, 2W) for image indices (S, n, 2)."""
        return torch.cat([self.x[idx[..., 0]], self.x[idx[..., 1]]], dim=-1).to(device)


def _model(name: str, p: VisualAdditionParams, seeds: Sequence[int],
           shape: tuple[int, int, int]) -> nn.Module:
    gens = streams(seeds, f"visual_addition/{name}")
    combine = "add" if "add" in name else "hadamard"
    if name.endswith("dense"):
        d = math.prod(shape)
        if name.startswith("nn"):
            return SeedMLP(gens, [d] + [p.width] * p.degree + [1], scalar_output=True)
        return CCP(gens, d, p.width, p.degree, p.activation, combine)
    if name.startswith("nn"):
        return SeedConvNet(gens, shape, p.conv_width, p.degree, p.kernel)
    return ConvCCP(gens, shape, p.conv_width, p.degree, p.kernel, p.activation, combine)


MEAN_SUM = 9.0
"""The mean of a + b over the 100 ordered pairs: predictions are ``MEAN_SUM + f(z)``, so no model
spends its first steps learning the offset."""


def _forward(model: nn.Module, images: torch.Tensor) -> torch.Tensor:
    """Predicted sums (S, n): dense models read the flattened images."""
    out = model(images.flatten(2)) if isinstance(model, CCP) else model(images)
    return out + MEAN_SUM


def _train(model: nn.Module, p: VisualAdditionParams, data: _Data, seeds: Sequence[int],
           device: torch.device) -> None:
    """Minibatch training on Σ_s mean_batch (f_s − y_s)²; every model of a seed sees the same
    minibatches (stream ``visual_addition/order``). Adam's step is cosine-decayed to 0 over the
    run; SGD (Nesterov momentum, weight decay) keeps its step, as in Wu et al.'s code."""
    idx, sums = data.parts["fit"]
    n = idx.shape[1]
    params = list(model.parameters())
    batches = math.ceil(n / p.batch_size)
    total = p.epochs * batches
    sgd = None
    if p.optimizer == "sgd":
        sgd = torch.optim.SGD(params, lr=p.lr, momentum=p.momentum, nesterov=p.momentum > 0,
                              weight_decay=p.weight_decay)
    state = adam_state(params)
    gens = streams(seeds, "visual_addition/order")
    rows = torch.arange(len(seeds))[:, None]
    t = 0
    for _ in range(p.epochs):
        order = epoch_orders(gens, 1, n)[:, 0]
        for start in range(0, n, p.batch_size):
            batch = order[:, start : start + p.batch_size]
            x = data.images(idx[rows, batch], device)
            y = sums[rows, batch].to(device, torch.float32)
            loss = ((_forward(model, x) - y) ** 2).mean(dim=1).sum()
            if sgd is not None:
                sgd.zero_grad()
                loss.backward()
                sgd.step()
            else:
                grads = torch.autograd.grad(loss, params)
                step = p.lr * 0.5 * (1 + math.cos(math.pi * t / total))
                adam_update(params, grads, state, t, step)
            t += 1


def _evaluate(model: nn.Module, p: VisualAdditionParams, data: _Data, part: str,
              device: torch.device) -> dict[str, np.ndarray]:
    idx, sums = data.parts[part]
    with torch.no_grad():
        out = torch.cat([_forward(model, data.images(idx[:, i : i + p.eval_batch], device)).cpu()
                         for i in range(0, idx.shape[1], p.eval_batch)], dim=1).double()
    y = sums.double()
    err = out.round() - y
    return {"accuracy": (err == 0).double().mean(1).numpy(),
            "leeway_accuracy": (err.abs() <= 1).double().mean(1).numpy(),
            "mse": ((out - y) ** 2).mean(1).numpy()}


def _cost(p: VisualAdditionParams) -> float:
    return float(p.epochs * p.n_train * len(p.models))


@experiment(
    "visual_addition",
    family="extrapolation",
    params=VisualAdditionParams,
    columns=COLUMNS,
    example={"n_train": 60, "n_test": 20, "width": 8, "conv_width": 2, "degree": 2,
             "epochs": 2, "batch_size": 16, "lr": 1e-2},
    cost=_cost,
)
def visual_addition(
    p: VisualAdditionParams, seeds: Sequence[int], device: torch.device
) -> pd.DataFrame:
    """Train each model on sums of digit pairs, seeds batched, and score its rounding accuracy
    on held-out pairs, unseen images of training pairs and the training images (module
    docstring)."""
    data = _Data(p, seeds)
    frames = []
    for name in p.models:
        model = _model(name, p, seeds, data.input_shape).to(device)
        n_params = sum(q[0].numel() for q in model.parameters())
        _train(model, p, data, seeds, device)
        net, arch = name.rsplit("_", 1)
        for part in PARTS:
            frames.append(pd.DataFrame({
                "seed": np.asarray(seeds), "model": name, "arch": arch, "net": net,
                "part": part, **_evaluate(model, p, data, part, device), "n_params": n_params,
            }))
    return pd.concat(frames, ignore_index=True).reindex(columns=["seed", *COLUMNS])
