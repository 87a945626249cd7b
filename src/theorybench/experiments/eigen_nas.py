"""Train-free architecture search: λ_min of the empirical NTK at initialization ranks architectures.

Claim (Zhu, Liu, Chrysos, Cevher, "Generalization properties of NAS under activation and skip
connection search", NeurIPS 2022, Theorems 1-3 and Algorithm 1 "Eigen-NAS"; the seeds' slides
"Train-free Neural Architecture Search"): the generalization error of a trained network of the
search space is bounded by O(1/√λ_min) with λ_min the smallest eigenvalue of its NTK, so
ranking sampled architectures by λ_min of the empirical NTK at initialization, on a batch of
training inputs, ranks them by accuracy after training.

Measurement (kind ``eigen_nas``), per seed: a random split of the data set (``n_train`` training
and ``n_val`` validation examples); ``archs`` architectures drawn from the search space
(:mod:`theorybench.models.supernet`: depth, width, an activation per layer, a skip coefficient
α_l ∈ {0, 1} per layer); each scored at initialization by

* ``lambda_min``: the smallest eigenvalue of the empirical NTK Θ (of the sum of the logits) on
  the first ``ntk_points`` training inputs (``ntk_inputs: noise``: on Gaussian inputs with the
  data's mean and per-coordinate standard deviation instead, unrelated to the task);
* ``trace``: tr Θ / n on the same batch (Σ_i ‖∇f(x_i)‖², the gradient-norm score);
* ``params``: the parameter count;
* ``random``: a uniform random number per architecture (a score with no information);

then each is trained by full-batch gradient descent on the cross-entropy (``steps`` steps of
size ``lr``) and its validation accuracy measured. One row per (seed, score): Kendall's τ_b and
Spearman's ρ between the score and the validation accuracy over the ``archs`` architectures,
``top_acc`` the validation accuracy of the architecture the score ranks first, and ``best_acc`` /
``mean_acc`` of the seed's architectures (the same on every row of a seed). ``ntk_at: trained``
computes every NTK score after training instead of at initialization.

Randomness: the split, the architectures, the initializations and the noise inputs from the
seed's ``eigen_nas/*`` streams; the networks are padded to the largest depth and width of the
search space (not of the batch), so a seed's numbers do not depend on the other seeds of a cell.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict, Field

from theorybench.models.supernet import ACTIVATIONS, Architecture, Supernet
from theorybench.registry import experiment, get_dataset
from theorybench.splits import random_split
from theorybench.streams import stream

SCORES = ("lambda_min", "trace", "params", "random")


class EigenNasParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    dataset: Literal["digits", "mnist1d"] = "digits"
    n_train: int = Field(256, ge=2, description="training examples per seed")
    n_val: int = Field(500, ge=1, description="validation examples per seed")
    ntk_points: int = Field(32, ge=2, description="inputs of the NTK batch (first training ones)")
    archs: int = Field(24, ge=3, description="architectures sampled per seed")
    depths: list[int] = Field([1, 2, 3, 4], description="hidden-layer counts of the space")
    widths: list[int] = Field([16, 32, 64], description="hidden widths of the space")
    activations: list[str] = Field(list(ACTIVATIONS), description="activations of the space")
    skip_prob: float = Field(0.5, ge=0, le=1, description="P(α_l = 1) for each layer l ≥ 2")
    steps: int = Field(200, ge=1, description="full-batch gradient steps")
    lr: float = Field(0.1, gt=0, description="gradient-descent step size")
    ntk_inputs: Literal["train", "noise"] = Field(
        "train", description="the NTK batch: training inputs, or Gaussian inputs")
    ntk_at: Literal["init", "trained"] = Field(
        "init", description="NTK scores at initialization or after training")


def sample_architectures(p: EigenNasParams, gen: torch.Generator) -> list[Architecture]:
    """``p.archs`` architectures drawn uniformly from the search space (depth, width, one
    activation per layer, skips with probability ``skip_prob``)."""
    out = []
    for _ in range(p.archs):
        u = torch.rand(3 + 2 * max(p.depths), generator=gen).tolist()
        depth = p.depths[int(u[0] * len(p.depths))]
        width = p.widths[int(u[1] * len(p.widths))]
        acts = tuple(p.activations[int(u[3 + i] * len(p.activations))] for i in range(depth))
        skips = tuple(0 if i == 0 else int(u[3 + max(p.depths) + i] < p.skip_prob)
                      for i in range(depth))
        out.append(Architecture(depth, width, acts, skips))
    return out


def ntk_scores(theta: torch.Tensor) -> dict[str, np.ndarray]:
    """λ_min and tr/n of each kernel of ``theta`` (A, n, n), in float64."""
    theta = theta.double()
    theta = (theta + theta.transpose(1, 2)) / 2
    eig = torch.linalg.eigvalsh(theta)
    return {"lambda_min": eig[:, 0].numpy(),
            "trace": (torch.diagonal(theta, dim1=1, dim2=2).mean(1)).numpy()}


def rank_rows(scores: dict[str, np.ndarray], acc: np.ndarray) -> list[dict[str, float | str]]:
    """Kendall τ_b and Spearman ρ of each score with ``acc``, and the top-ranked accuracy."""
    from scipy.stats import kendalltau, spearmanr  # on use: scipy.stats takes a second to import
    rows: list[dict[str, float | str]] = []
    for name, s in scores.items():
        tau = kendalltau(s, acc).statistic
        rho = spearmanr(s, acc).statistic
        rows.append({"score": name, "tau": float(np.nan_to_num(tau)),
                     "spearman": float(np.nan_to_num(rho)),
                     "top_acc": float(acc[int(np.argmax(s))])})
    return rows


def train_group(p: EigenNasParams, archs: list[Architecture], gens: list[torch.Generator],
                x_tr: torch.Tensor, y_tr: torch.Tensor, x_val: torch.Tensor,
                y_val: torch.Tensor, x_ntk: torch.Tensor,
                n_classes: int) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Architectures of one width, each with its own data (leading dimension of the inputs):
    NTK scores (at ``p.ntk_at``) and validation accuracies after ``p.steps`` GD steps."""
    net = Supernet(archs, x_tr.shape[-1], n_classes, gens, depth=max(p.depths))
    a = len(archs)
    params = {k: v.clone() for k, v in net.params.items()}
    scores: dict[str, np.ndarray] = {}
    if p.ntk_at == "init":
        scores = ntk_scores(net.ntk(params, x_ntk))
    for _ in range(p.steps):
        for v in params.values():
            v.requires_grad_(True)
        logits = net.forward(params, x_tr)
        loss = F.cross_entropy(logits.reshape(-1, n_classes), y_tr.reshape(-1),
                               reduction="sum") / y_tr.shape[1]
        grads = torch.autograd.grad(loss, list(params.values()), allow_unused=True,
                                    materialize_grads=True)
        with torch.no_grad():
            params = {k: (v - p.lr * g).detach()
                      for (k, v), g in zip(params.items(), grads, strict=True)}
    with torch.no_grad():
        acc = (net.forward(params, x_val).argmax(-1) == y_val).float().mean(1)
    if p.ntk_at == "trained":
        scores = ntk_scores(net.ntk(params, x_ntk))
    return torch.nan_to_num(acc, nan=0.0).double().numpy()[:a], scores


@experiment(
    "eigen_nas",
    family="nas",
    params=EigenNasParams,
    columns=("score", "tau", "spearman", "top_acc", "best_acc", "mean_acc"),
    example={"n_train": 40, "n_val": 40, "ntk_points": 8, "archs": 4, "steps": 3,
             "widths": [8], "depths": [1, 2]},
    cost=lambda p: p.archs * p.steps * p.n_train * max(p.widths) * max(p.depths),
)
def eigen_nas(p: EigenNasParams, seeds: Sequence[int], device: torch.device) -> pd.DataFrame:
    """One row per (seed, score) as in the module docstring (CPU, float32 training, float64
    eigenvalues; ``device`` is not used)."""
    unknown = set(p.activations) - set(ACTIVATIONS)
    if unknown:
        raise ValueError(f"unknown activations {sorted(unknown)}; known {list(ACTIVATIONS)}")
    x_all, y_all = get_dataset(p.dataset).load()
    x_all = x_all.reshape(len(x_all), -1).float()
    n_classes, d = int(y_all.max()) + 1, x_all.shape[1]
    # per seed: split, architectures, NTK batch; then every (seed, architecture) of one width
    # trained in one batch
    items = []
    for seed in seeds:
        train, val = random_split(len(x_all), [p.n_train, p.n_val],
                                  stream(seed, "eigen_nas/split"))
        x_tr = x_all[train]
        if p.ntk_inputs == "train":
            x_ntk = x_tr[: p.ntk_points]
        else:
            x_ntk = x_tr.mean(0) + x_tr.std(0) * torch.randn(
                p.ntk_points, d, generator=stream(seed, "eigen_nas/noise"))
        archs = sample_architectures(p, stream(seed, "eigen_nas/space"))
        for k, arch in enumerate(archs):
            items.append((seed, k, arch, train, val, x_ntk))
    acc: dict[tuple[int, int], float] = {}
    ntk: dict[tuple[int, int], dict[str, float]] = {}
    for width in sorted({it[2].width for it in items}):
        group = [it for it in items if it[2].width == width]
        gens = [stream(seed, f"eigen_nas/init/{k}") for seed, k, *_ in group]
        tr = torch.stack([it[3] for it in group])
        va = torch.stack([it[4] for it in group])
        accs, scores = train_group(
            p, [it[2] for it in group], gens, x_all[tr], y_all[tr], x_all[va], y_all[va],
            torch.stack([it[5] for it in group]), n_classes)
        for j, (seed, k, *_) in enumerate(group):
            acc[seed, k] = float(accs[j])
            ntk[seed, k] = {name: float(v[j]) for name, v in scores.items()}
    tables = []
    for seed in seeds:
        keys = sorted(k for s_, k in acc if s_ == seed)
        archs = [it[2] for it in items if it[0] == seed]
        acc_np = np.array([acc[seed, k] for k in keys])
        scores = {name: np.array([ntk[seed, k][name] for k in keys])
                  for name in ("lambda_min", "trace")}
        scores["params"] = np.array([x.n_params(d, n_classes) for x in archs], float)
        scores["random"] = torch.rand(len(keys), generator=stream(seed, "eigen_nas/random"),
                                      dtype=torch.float64).numpy()
        rows = rank_rows(scores, acc_np)
        for r in rows:
            r.update({"best_acc": float(acc_np.max()), "mean_acc": float(acc_np.mean())})
        tables.append(pd.DataFrame(rows).assign(seed=seed))
    cols = ["seed", "score", "tau", "spearman", "top_acc", "best_acc", "mean_acc"]
    return pd.concat(tables, ignore_index=True)[cols]
