"""Norm-based complexity measures correlate weakly, and with the wrong sign, with generalization.

Claim (Jiang, Neyshabur, Mobahi, Krishnan, Bengio, "Fantastic generalization measures and where
to find them", ICLR 2020, Table 2 / Appendix C; the seeds' table "How well do complexity measures
correlate with generalization?"): over a family of networks trained with varied
hyper-parameters to the same low training cross-entropy (0.01), the Kendall rank correlation τ
between a norm-based measure and the generalization gap is weak and for some measures negative.
The paper's overall τ (CIFAR-10, ~10 000 convolutional networks): Frobenius distance to
initialization −0.263, spectral complexity −0.537, parameter Frobenius norm 0.073, path-norm
0.373.

Measures (Jiang et al. Appendix C; bias-free ReLU MLP with weight matrices W_1 … W_{L+1}, W⁰ at
initialization; Kendall τ is invariant to monotone maps, so the paper's logarithms and constants
do not matter):

    params      = Σ_i ‖W_i‖_F²
    frob        = Σ_i ‖W_i − W⁰_i‖_F²                                 (frob-distance)
    spec        = Π_i ‖W_i‖₂² · Σ_i ‖W_i‖_F² / ‖W_i‖₂²                 (spec-orig)
    spec_init   = Π_i ‖W_i‖₂² · Σ_i ‖W_i − W⁰_i‖_F² / ‖W_i‖₂²          (spec-init)
    path        = Σ_k f_{W²}(1)[k]   (forward pass of the squared weights on the all-ones input)

Generalization gap: training accuracy (on the labels trained on) minus test accuracy (clean
labels), as in the paper. Per seed, the kind trains every network of a grid and reports, for each
measure, τ_b(measure, gap) over the networks that reached the stopping criterion (full-batch
training cross-entropy ≤ ``stop_loss``, checked every ``check_every`` steps, within ``steps``
SGD steps; the weights are frozen at that step).

Grids. ``grid: hyper`` (the claim): every combination of ``depths`` × ``widths`` × ``lrs`` ×
``batch_sizes`` × ``weight_decays`` (SGD with momentum ``momentum``), clean labels.
``grid: label_noise`` (a control): one architecture and optimizer (the last depth, width,
learning rate and batch size, the first weight decay) and only the fraction of training
labels replaced by a random other class varying, over ``noise_levels`` × ``noise_repeats``
networks. Besides τ of the trained measures (``tau_*``), the rows carry τ of the spectral
complexity, parameter norm and path-norm of the same networks' *initial* weights with the
trained networks' gap (``tau0_*``): how much of a measure's correlation the architecture alone
already carries.

Vectorization: all networks, across seeds and configurations, are trained together as one batch
of weight tensors (``torch.bmm``) with SGD written out (forward, backward and momentum step by
hand); narrower networks are embedded in the widest with masked (zero) hidden units and
shallower ones in the deepest with frozen identity hidden layers, both exact for bias-free ReLU
nets (padded units have zero weights, activation and gradient; ReLU(I·h) = h for h ≥ 0). Each
model uses the first b of the ``max(batch_sizes)`` indices drawn for it per step. Randomness per
seed: ``complexity/split`` (train/test split of scikit-learn's digits), ``complexity/noise``
(label noise), ``complexity/init`` (He initialization), ``complexity/batch`` (minibatches,
sampled with replacement, ``CHUNK`` steps at a time): a seed's rows do not depend on the other
seeds.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from typing import Literal

import numpy as np
import pandas as pd
import torch
from pydantic import BaseModel, ConfigDict, Field

from theorybench.data.digits import load_digits_tensors
from theorybench.registry import experiment
from theorybench.streams import stream

CLASSES = 10
MEASURES = ("frob", "spec", "spec_init", "params", "path")
WEAK_SET = ("frob", "spec", "params", "path")
INIT_MEASURES = ("spec", "params", "path")
CHUNK = 50


class ComplexityParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    grid: Literal["hyper", "label_noise"] = Field(
        "hyper",
        description="hyper: the hyper-parameter grid; label_noise: only label noise varies")
    n_train: int = Field(256, ge=16, le=1500, description="training digits per seed")
    depths: list[int] = Field([1, 2], min_length=1, description="hidden layers")
    widths: list[int] = Field([16, 64], min_length=1, description="hidden units per layer")
    lrs: list[float] = Field([0.05, 0.2], min_length=1, description="SGD learning rates")
    batch_sizes: list[int] = Field([16, 64], min_length=1, description="minibatch sizes")
    weight_decays: list[float] = Field([0.0, 1e-3], min_length=1, description="L2 coefficients")
    momentum: float = Field(0.9, ge=0, lt=1)
    noise_levels: list[float] = Field([0.0, 0.1, 0.2, 0.3], min_length=2,
                                      description="label-noise fractions (grid: label_noise)")
    noise_repeats: int = Field(4, ge=1, description="networks per noise level (label_noise)")
    stop_loss: float = Field(0.01, gt=0, description="training cross-entropy that stops a run")
    steps: int = Field(2000, ge=1, description="cap on SGD steps (unfinished runs excluded)")
    check_every: int = Field(10, ge=1, description="steps between stopping checks")


def configs(p: ComplexityParams) -> list[tuple[int, int, float, int, float, float]]:
    """(depth, width, lr, batch, weight decay, label noise) of every network of the grid."""
    if p.grid == "hyper":
        return [(d, w, lr, b, wd, 0.0) for d, w, lr, b, wd in itertools.product(
            p.depths, p.widths, p.lrs, p.batch_sizes, p.weight_decays)]
    base = (p.depths[-1], p.widths[-1], p.lrs[-1], p.batch_sizes[-1], p.weight_decays[0])
    return [(*base, r) for r in p.noise_levels for _ in range(p.noise_repeats)]


def path_norm(weights: Sequence[torch.Tensor]) -> torch.Tensor:
    """Σ_k f_{W²}(1)[k] for a batch of bias-free ReLU nets, weights (M, fan_in, fan_out) each
    (the squared weights are non-negative, so the ReLUs act as the identity)."""
    h = torch.ones(weights[0].shape[0], 1, weights[0].shape[1], dtype=weights[0].dtype)
    for w in weights:
        h = torch.bmm(h, w.square())
    return h.sum((1, 2))


def measures(weights: Sequence[torch.Tensor], init: Sequence[torch.Tensor],
             live: torch.Tensor | None = None) -> dict[str, np.ndarray]:
    """The five measures of the module docstring for a batch of networks (float64); ``live``
    (M, layers) marks the layers that count (0 for the frozen identity layers that embed a
    shallower net: they leave the path-norm unchanged and are left out of the other sums)."""
    w = [x.double() for x in weights]
    w0 = [x.double() for x in init]
    on = (torch.ones(w[0].shape[0], len(w)) if live is None else live).double().T  # (L, M)
    fro = torch.stack([x.square().sum((1, 2)) for x in w]) * on
    dist = torch.stack([(x - y).square().sum((1, 2)) for x, y in zip(w, w0, strict=True)]) * on
    spec2 = torch.stack([torch.linalg.matrix_norm(x, ord=2).square() for x in w])
    prod = (spec2.log() * on).sum(0)
    with np.errstate(divide="ignore"):
        return {
            "params": fro.sum(0).numpy(),
            "frob": dist.sum(0).numpy(),
            "spec": (prod + (fro / spec2).sum(0).log()).numpy(),
            "spec_init": (prod + (dist / spec2).sum(0).log()).numpy(),
            "path": path_norm(w).log().numpy(),
        }


def kendall(x: np.ndarray, y: np.ndarray) -> float:
    """Kendall's τ_b, NaN when either side is constant or fewer than 3 points."""
    from scipy.stats import kendalltau  # on use: scipy.stats takes a second to import
    if len(x) < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return float("nan")
    return float(kendalltau(x, y).statistic)


def _forward(x: torch.Tensor, weights: Sequence[torch.Tensor], unit: torch.Tensor
             ) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Logits and the hidden activations (input first) of a batch of masked ReLU MLPs."""
    acts = [x]
    for w in weights[:-1]:
        acts.append(torch.relu(torch.bmm(acts[-1], w)) * unit)
    return torch.bmm(acts[-1], weights[-1]), acts


def _grads(weights: Sequence[torch.Tensor], acts: Sequence[torch.Tensor], dout: torch.Tensor
           ) -> list[torch.Tensor]:
    """Backpropagation of d loss / d logits = ``dout`` through the masked ReLU MLPs (the
    activation masks are recovered from the activations: a unit is live where it is > 0)."""
    grads = [torch.empty(0)] * len(weights)
    delta = dout
    for li in range(len(weights) - 1, -1, -1):
        grads[li] = torch.bmm(acts[li].transpose(1, 2), delta)
        if li > 0:
            delta = torch.bmm(delta, weights[li].transpose(1, 2)) * (acts[li] > 0)
    return grads


def _train_group(cfg: list[tuple[int, int, float, int, float, float]], seeds: Sequence[int],
                 data: list[dict[str, torch.Tensor]], p: ComplexityParams) -> dict[str, np.ndarray]:
    """Train the networks ``cfg`` of every seed together; per model: gap, steps, reached, and
    the measures. Shallower networks are embedded in the deepest with frozen identity layers
    (exact for ReLU nets on non-negative activations; excluded from the measures)."""
    c, s = len(cfg), len(seeds)
    width = max(w for _, w, *_ in cfg)
    depth = max(d for d, *_ in cfg)
    d_in = data[0]["xtr"].shape[1]
    dims = [d_in] + [width] * depth + [CLASSES]
    real = torch.tensor([float(w) for _, w, *_ in cfg])
    unit = (torch.arange(width)[None, :] < real[:, None]).float()           # (C, width)
    # layer li (0 = input layer, depth = output layer) is trained unless it is one of the
    # identity layers padding a shallower net: hidden-to-hidden layers depth_c+1 .. depth
    live = torch.tensor([[li == 0 or li == depth or li < dc for li in range(depth + 1)]
                         for dc, *_ in cfg], dtype=torch.float32)          # (C, layers)
    eye = torch.eye(width)[None] * unit[:, :, None]
    init: list[list[torch.Tensor]] = [[] for _ in dims[:-1]]
    for seed in seeds:
        gen = stream(seed, "complexity/init")
        for li in range(len(dims) - 1):
            fan_in = torch.full((c,), float(d_in)) if li == 0 else real
            w = torch.randn(c, dims[li], dims[li + 1], generator=gen)
            w = w * torch.sqrt(2.0 / fan_in)[:, None, None]
            if li > 0:
                w = w * unit[:, :, None]
            if li < len(dims) - 2:
                w = w * unit[:, None, :]
            lv = live[:, li][:, None, None]
            if 0 < li < depth:
                w = lv * w + (1 - lv) * eye
            init[li].append(w)
    w0 = [torch.cat(layer) for layer in init]                              # (S*C, in, out)
    weights = [w.clone() for w in w0]
    vel = [torch.zeros_like(w) for w in w0]
    unit_m = unit.repeat(s, 1)[:, None, :]
    live_m = live.repeat(s, 1)
    lr = torch.tensor([x[2] for x in cfg]).repeat(s)[:, None, None]
    wd = torch.tensor([x[4] for x in cfg]).repeat(s)[:, None, None]
    bmax = max(x[3] for x in cfg)
    bmask = (torch.arange(bmax)[None, :] < torch.tensor([x[3] for x in cfg])[:, None]).float()
    bmask = (bmask / bmask.sum(1, keepdim=True)).repeat(s, 1)[:, :, None]  # (M, bmax, 1)
    xtr = torch.stack([d["xtr"] for d in data])                             # (S, n, d)
    ytr = torch.cat([torch.stack([d["ytr"][x[5]] for x in cfg]) for d in data])  # (M, n)
    xtr_m = xtr.repeat_interleave(c, 0)                                     # (M, n, d)
    m = s * c
    active = torch.ones(m, dtype=torch.bool)
    steps = torch.full((m,), p.steps, dtype=torch.long)
    gens = [stream(seed, "complexity/batch") for seed in seeds]
    rows = torch.arange(m)[:, None]
    n = xtr.shape[1]
    eye10 = torch.eye(CLASSES)
    step = 0
    while step < p.steps:
        k = min(CHUNK, p.steps - step)
        idx = torch.cat([torch.randint(n, (c, k, bmax), generator=g) for g in gens])  # (M, k, b)
        for t in range(k):
            if step % p.check_every == 0:
                logits, _ = _forward(xtr_m, weights, unit_m)
                ce = torch.nn.functional.cross_entropy(
                    logits.reshape(-1, CLASSES), ytr.reshape(-1), reduction="none"
                ).reshape(m, n).mean(1)
                done = active & (ce <= p.stop_loss)
                steps[done] = step
                active &= ~done
                if not bool(active.any()):
                    break
            ib = idx[:, t]
            logits, acts = _forward(xtr_m[rows, ib], weights, unit_m)
            dout = (torch.softmax(logits, -1) - eye10[ytr[rows, ib]]) * bmask
            grads = _grads(weights, acts, dout)
            a = active.float()[:, None, None] * lr
            for li, (w, g, v) in enumerate(zip(weights, grads, vel, strict=True)):
                v.mul_(p.momentum).add_(torch.nan_to_num(g) + wd * w)
                w.sub_(a * live_m[:, li][:, None, None] * v)
            step += 1
        else:
            continue
        break
    ok = torch.stack([torch.isfinite(w).all(dim=(1, 2)) for w in weights]).all(0)
    final = [torch.nan_to_num(w) for w in weights]
    logits, _ = _forward(xtr_m, final, unit_m)
    train_acc = (logits.argmax(-1) == ytr).float().mean(1)
    xte = torch.stack([d["xte"] for d in data]).repeat_interleave(c, 0)
    yte = torch.stack([d["yte"] for d in data]).repeat_interleave(c, 0)
    test_acc = (_forward(xte, final, unit_m)[0].argmax(-1) == yte).float().mean(1)
    out = {f"{k}_trained": v for k, v in measures(final, w0, live_m).items()}
    out.update({f"{k}_init": v for k, v in measures(w0, w0, live_m).items()})
    out.update(gap=(train_acc - test_acc).numpy(), test_acc=test_acc.numpy(),
               steps=steps.numpy(), reached=(~active & ok).numpy())
    return out


def _seed_data(seed: int, p: ComplexityParams) -> dict[str, torch.Tensor]:
    x, y = load_digits_tensors()
    perm = torch.randperm(len(y), generator=stream(seed, "complexity/split"))
    tr, te = perm[: p.n_train], perm[p.n_train:]
    ytr = y[tr]
    gen = stream(seed, "complexity/noise")
    noisy = {}
    for r in sorted(set(p.noise_levels) | {0.0}):
        flip = torch.randperm(p.n_train, generator=gen)[: round(r * p.n_train)]
        shift = torch.randint(1, CLASSES, (len(flip),), generator=gen)
        labels = ytr.clone()
        labels[flip] = (labels[flip] + shift) % CLASSES
        noisy[r] = labels
    return {"xtr": x[tr], "xte": x[te], "yte": y[te], "ytr": noisy}


@experiment(
    "complexity_measures",
    family="generalization",
    params=ComplexityParams,
    columns=("models", "reached_frac", "mean_gap", "sd_gap", "mean_test_acc", "mean_steps",
             *(f"tau_{k}" for k in MEASURES), *(f"tau0_{k}" for k in INIT_MEASURES),
             "max_abs_tau"),
    example={"n_train": 32, "depths": [1], "widths": [8, 16], "lrs": [0.1], "batch_sizes": [8, 16],
             "weight_decays": [0.0], "steps": 60, "stop_loss": 0.3},
    cost=lambda p: len(configs(p)) * p.steps * max(p.widths) ** 2 / 64,
)
def complexity_measures(p: ComplexityParams, seeds: Sequence[int],
                        device: torch.device) -> pd.DataFrame:
    """One row per seed: Kendall τ between each measure and the generalization gap over the
    seed's networks that reached the stopping criterion (CPU, float32; ``device`` unused)."""
    cfg = configs(p)
    data = [_seed_data(seed, p) for seed in seeds]
    table = _train_group(cfg, seeds, data, p)
    who = np.repeat(np.arange(len(seeds)), len(cfg))
    rows = []
    for si, seed in enumerate(seeds):
        sel = (who == si) & table["reached"]
        gap = table["gap"][sel]
        taus = {f"tau_{k}": kendall(table[f"{k}_trained"][sel], gap) for k in MEASURES}
        taus.update({f"tau0_{k}": kendall(table[f"{k}_init"][sel], gap) for k in INIT_MEASURES})
        weak = [abs(taus[f"tau_{k}"]) for k in WEAK_SET if math.isfinite(taus[f"tau_{k}"])]
        any_sel = bool(sel.any())
        rows.append({
            "seed": seed,
            "models": int(sel.sum()),
            "reached_frac": float(sel.sum() / len(cfg)),
            "mean_gap": float(gap.mean()) if any_sel else float("nan"),
            "sd_gap": float(gap.std()) if any_sel else float("nan"),
            "mean_test_acc": float(table["test_acc"][sel].mean()) if any_sel else float("nan"),
            "mean_steps": float(table["steps"][sel].mean()) if any_sel else float("nan"),
            **taus,
            "max_abs_tau": max(weak) if weak else float("nan"),
        })
    return pd.DataFrame(rows)
