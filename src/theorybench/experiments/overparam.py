"""Over-parameterized optimization: linear convergence of wide two-layer ReLU nets under GD, fitting
random labels, and SGD with constant versus vanishing steps.

Claims and quantities:

* **GD finds global minima of wide two-layer nets** (Du, Zhai, Póczos, Singh, ICLR 2019; Jacot,
  Gabriel, Hongler, NeurIPS 2018). Net ``u(a) = (1/√m) Σ_r v_r relu(w_rᵀa)``, ``w_r ~ N(0, I)``,
  ``v_r ~ Unif{−1, 1}`` fixed (``train: first``; ``both`` also trains ``v``), ``‖a_i‖ = 1``,
  full-batch GD with step ``η`` on ``L = ½‖u − b‖²``. With ``H∞`` the infinite-width Gram matrix
  (:func:`theorybench.ntk.two_layer_relu_ntk`) and ``λ₀ = λ_min(H∞)``, Du et al. prove
  ``L(k) ≤ (1 − ηλ₀/2)ᵏ L(0)`` for wide enough nets, and the linearized (kernel) dynamics
  ``u(k) − b = (I − ηH)ᵏ(u(0) − b)`` decays asymptotically like ``(1 − ηλ_min(H))^{2k}``.
  Reported per seed: the loss along the steps; the predicted log-rates per step
  ``log_rate_bound = ln(1 − ηλ₀/2)``, ``log_rate_ntk = 2 ln(1 − ηλ₀)`` and
  ``log_rate_emp = 2 ln(1 − ηλ_min(H(0)))`` with ``H(0)`` the empirical NTK Gram at
  initialization (exact, in closed form from the activation patterns); the relative Gram change
  ``‖H(K) − H(0)‖_F / ‖H(0)‖_F`` and weight change ``‖W(K) − W(0)‖_F / ‖W(0)‖_F``.
* **Deep nets fit random labels** (Zhang, Bengio, Hardt, Recht, Vinyals, ICLR 2017). An MLP
  trained by mini-batch SGD with momentum on ``n`` digits whose labels are replaced by uniform
  random classes reaches zero training error when it has many more parameters than ``n``, while
  its accuracy on held-out digits (true labels) stays at chance, 1/10.
* **SGD needs vanishing steps to converge** (CVPR/ICASSP 2023 tutorials, Q1/Q3; Mertikopoulos,
  Hallak, Kavis, Cevher, NeurIPS 2020). On a least-squares problem with noisy gradients (batch
  ``B`` of ``n`` samples, no interpolation), iterates with a constant step ``α`` keep moving in a
  noise ball of radius ∝ √α; with ``α_k = α k₀/(k₀ + k)`` they converge, ``E‖x_k − x*‖² = O(1/k)``.
  Measured: the distance between late iterates ``late_move(K) = ‖x_K − x_{K/2}‖`` and the
  distance to the minimizer ``‖x_K − x*‖`` at horizons ``K``, with ``log_steps = ln K``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import pandas as pd
import torch
from pydantic import BaseModel, ConfigDict, Field

from theorybench.data.digits import load_digits_tensors
from theorybench.data.synthetic import linear_regression, sphere
from theorybench.models.mlp import SeedMLP
from theorybench.ntk import two_layer_relu_ntk
from theorybench.registry import experiment
from theorybench.splits import epoch_orders, minibatches, random_split
from theorybench.streams import stream, streams

# --------------------------------------------------------------------------------------------
# Linear convergence of GD on wide two-layer ReLU nets (Du et al. 2019)


class GDConvergenceParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    width: int = Field(256, ge=1, description="hidden units m")
    n: int = Field(32, ge=2, description="training points, uniform on the unit sphere")
    dim: int = Field(8, ge=2, description="input dimension")
    train: Literal["first", "both"] = Field(
        "first", description="first: only w (Du et al.); both: w and v (Jacot et al.)"
    )
    steps: int = Field(600, ge=1, description="full-batch GD steps K")
    lr: float = Field(1.0, gt=0, lt=2, description="step η in units of 1/λ_max(H∞)")
    record_every: int = Field(20, ge=1, description="loss recorded every this many steps")


def _gd_init(
    p: GDConvergenceParams, seeds: Sequence[int]
) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
    """Per seed: inputs (S, n, d) on the sphere, ±1 labels (S, n), and the net's weights."""
    xs, bs, ws, vs = [], [], [], []
    for seed in seeds:
        g = stream(seed, "overparam/gd")
        xs.append(sphere(p.n, p.dim, g, dtype=torch.float64))
        bs.append(torch.randint(0, 2, (p.n,), generator=g).to(torch.float64) * 2 - 1)
        ws.append(torch.randn(p.width, p.dim, generator=g, dtype=torch.float64))
        vs.append(torch.randint(0, 2, (p.width,), generator=g).to(torch.float64) * 2 - 1)
    params = {"w": torch.stack(ws), "v": torch.stack(vs)}
    return torch.stack(xs), torch.stack(bs), params


def ntk_gram(params: dict[str, torch.Tensor], x: torch.Tensor, train: str) -> torch.Tensor:
    """Empirical NTK Gram (S, n, n) of each seed's net over the trained layers, in closed form
    (the J Jᵀ of :func:`theorybench.ntk.empirical_ntk`, which the tests compare it with): with
    s_ir = 1{w_rᵀa_i > 0} (autograd's ReLU derivative at 0 is 0),
    H_ij = (1/m) Σ_r v_r² s_ir s_jr a_iᵀa_j for ``w``, plus (1/m) Σ_r relu(w_rᵀa_i) relu(w_rᵀa_j)
    for ``v`` when both layers are trained."""
    w, v = params["w"], params["v"]
    pre = x @ w.mT  # (S, n, m)
    active = (pre > 0).to(x.dtype) * v.unsqueeze(-2)
    gram = (active @ active.mT) * (x @ x.mT) / w.shape[-2]
    if train == "both":
        hidden = pre.relu()
        gram = gram + hidden @ hidden.mT / w.shape[-2]
    return gram


def gd_loss_and_grads(params: dict[str, torch.Tensor], x: torch.Tensor, b: torch.Tensor,
                      trained: Sequence[str]) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Per-seed loss ½‖u − b‖² of :func:`theorybench.ntk.two_layer_relu` and its gradients in
    the ``trained`` layers, by back-propagation written out (autograd's result to rounding, in
    one forward pass and without its per-node bookkeeping): ∂L/∂w_r = (v_r/√m) Σ_i r_i
    1{w_rᵀa_i > 0} a_i and ∂L/∂v_r = (1/√m) Σ_i r_i relu(w_rᵀa_i), with r = u − b."""
    w, v = params["w"], params["v"]
    scale = 1.0 / math.sqrt(w.shape[-2])
    hidden = (x @ w.mT).relu_()  # (S, n, m)
    resid = (hidden @ v.unsqueeze(-1)).squeeze(-1) * scale - b  # (S, n)
    grads = {}
    if "w" in trained:  # sign(relu(·)) is the 0/1 activation pattern
        weighted = (x * resid.unsqueeze(-1)).mT @ hidden.sign()  # (S, d, m)
        grads["w"] = weighted.mT * (v * scale).unsqueeze(-1)
    if "v" in trained:
        grads["v"] = (resid.unsqueeze(-2) @ hidden).squeeze(-2) * scale
    return 0.5 * (resid**2).sum(dim=-1), [grads[name] for name in trained]


SEED_CHUNK = 4
"""Seeds descended together in :func:`two_layer_gd_convergence`: a chunk's (n, m) activations
stay in cache (about 3× faster per seed than all 16 smoke seeds at once at m = 1024); the
chunked run gives the whole batch's numbers (tests)."""


def gd_descend(params: dict[str, torch.Tensor], x: torch.Tensor, b: torch.Tensor,
               eta: torch.Tensor, trained: Sequence[str], steps: int, record_every: int
               ) -> tuple[dict[int, torch.Tensor], dict[str, torch.Tensor]]:
    """``steps`` full-batch GD steps with each seed's step ``eta`` (S,) on the ``trained``
    layers: the per-seed losses at every ``record_every``-th step and the last, and the final
    weights."""
    params = dict(params)
    losses: dict[int, torch.Tensor] = {}
    for k in range(steps + 1):
        per_seed, grads = gd_loss_and_grads(params, x, b, trained)
        if k % record_every == 0 or k == steps:
            losses[k] = per_seed
        if k == steps:
            break
        for name, grad in zip(trained, grads, strict=True):
            params[name] = params[name] - eta.view(-1, *[1] * (grad.dim() - 1)) * grad
    return losses, params


@experiment(
    "two_layer_gd_convergence",
    family="overparam",
    params=GDConvergenceParams,
    columns=("step", "loss", "loss_ratio", "log_rate_bound", "log_rate_ntk", "log_rate_emp",
             "log_rate_measured", "rate_to_kernel", "rate_to_bound", "lambda0", "lambda_min_emp",
             "eta", "gram_change", "weight_change"),
    example={"width": 16, "n": 6, "dim": 3, "steps": 4, "record_every": 2},
)
def two_layer_gd_convergence(
    p: GDConvergenceParams, seeds: Sequence[int], device: torch.device
) -> pd.DataFrame:
    """Rows per (seed, recorded step): the loss and its ratio to the initial loss; per-seed
    constants repeated on every row: predicted log-rates, the measured one
    (``log_rate_measured``: least-squares slope of ln L over the recorded steps, as the ``rate``
    rule computes it) and its ratios to the empirical-NTK rate (``rate_to_kernel``) and to Du et
    al.'s bound (``rate_to_bound``), λ₀, λ_min(H(0)), η, and the relative changes of the Gram
    matrix and of the weights after the last step."""
    seeds = tuple(seeds)
    x, b, params = _gd_init(p, seeds)
    x, b = x.to(device), b.to(device)
    params = {name: t.to(device) for name, t in params.items()}
    h_inf = two_layer_relu_ntk(x, train=p.train)
    eig_inf = torch.linalg.eigvalsh(h_inf)
    lam0, eta = eig_inf[:, 0], p.lr / eig_inf[:, -1]
    gram0 = ntk_gram(params, x, p.train)
    lam_emp = torch.linalg.eigvalsh(gram0)[:, 0]
    trained = ["w"] if p.train == "first" else ["w", "v"]
    start = {k: t.clone() for k, t in params.items()}
    chunks = [slice(i, i + SEED_CHUNK) for i in range(0, len(seeds), SEED_CHUNK)]
    runs = [gd_descend({k: t[c] for k, t in params.items()}, x[c], b[c], eta[c], trained,
                       p.steps, p.record_every) for c in chunks]
    losses = {k: torch.cat([run[0][k] for run in runs]) for k in runs[0][0]}
    params = {k: torch.cat([run[1][k] for run in runs]) for k in params}
    gram_k = ntk_gram(params, x, p.train)
    gram_change = (gram_k - gram0).flatten(1).norm(dim=1) / gram0.flatten(1).norm(dim=1)
    moved = sum((params[n] - start[n]).flatten(1).norm(dim=1) for n in trained)
    weight_change = moved / sum(start[n].flatten(1).norm(dim=1) for n in trained)
    steps = torch.tensor(list(losses), dtype=torch.float64, device=x.device)
    log_loss = torch.stack([losses[k] for k in losses], dim=1).log()  # (S, recorded steps)
    centred = steps - steps.mean()
    measured = ((log_loss - log_loss.mean(dim=1, keepdim=True)) * centred).sum(dim=1) / (
        centred**2).sum()
    bound = torch.log1p(-eta * lam0 / 2)
    kernel = 2 * torch.log1p(-eta * lam_emp.clamp_min(0))
    per_seed_cols = {
        "log_rate_bound": bound,
        "log_rate_ntk": 2 * torch.log1p(-eta * lam0),
        "log_rate_emp": kernel,
        "log_rate_measured": measured,
        "rate_to_kernel": measured / kernel,
        "rate_to_bound": measured / bound,
        "lambda0": lam0, "lambda_min_emp": lam_emp, "eta": eta,
        "gram_change": gram_change, "weight_change": weight_change,
    }
    rows = []
    for i, seed in enumerate(seeds):
        consts = {name: float(col[i]) for name, col in per_seed_cols.items()}
        for k, loss in losses.items():
            rows.append({"seed": seed, "step": k, "loss": float(loss[i]),
                         "loss_ratio": float(loss[i] / losses[0][i]), **consts})
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------------------------
# Fitting corrupted and random labels (Zhang et al. 2017)


class RandomLabelsParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    corruption: float = Field(
        1.0, ge=0, le=1, description="label corruption p: 0 true labels, 1 random labels"
    )
    corrupt: Literal["example", "class"] = Field(
        "example", description="example: each label independently replaced by a uniform random "
        "class with probability p (Zhang et al.); class: each class relabelled as a whole with "
        "probability p (labels stay a function of the digit)"
    )
    width: int = Field(512, ge=1, description="hidden units per layer")
    hidden_layers: int = Field(1, ge=1)
    n_train: int = Field(300, ge=10)
    n_test: int = Field(1000, ge=10, description="held-out digits, always with true labels")
    epochs: int = Field(100, ge=1, description="budget; a run stops once every seed fits")
    batch_size: int = Field(30, ge=1)
    lr: float = Field(0.1, gt=0, description="SGD step")
    momentum: float = Field(0.9, ge=0, lt=1)
    check_every: int = Field(5, ge=1, description="steps between checks of the training error")


def corrupt_labels(y: torch.Tensor, p: float, unit: str, g: torch.Generator) -> torch.Tensor:
    """Labels ``y`` (n,) with corruption ``p``, coupled across ``p``: the uniforms and the
    replacement classes are drawn whatever ``p`` is, so the corrupted set at ``p`` contains the
    one at any smaller ``p`` (paired comparisons along ``p`` on one seed)."""
    u_ex, new_ex = torch.rand(len(y), generator=g), torch.randint(0, 10, (len(y),), generator=g)
    u_cl, new_cl = torch.rand(10, generator=g), torch.randint(0, 10, (10,), generator=g)
    if unit == "example":
        return torch.where(u_ex < p, new_ex, y)
    return torch.where(u_cl[y] < p, new_cl[y], y)


PREDICT_CHUNK = 2
"""Seeds whose predictions on the whole training (or held-out) set :func:`random_label_fit`
computes together: a chunk's (N, width) activations stay in cache (about 3× faster than all
eight smoke seeds at once); the predictions are the whole batch's (tests)."""


@experiment(
    "random_label_fit",
    family="overparam",
    params=RandomLabelsParams,
    columns=("n_params", "changed", "fitted", "epochs_to_fit", "train_error", "test_acc"),
    example={"width": 8, "n_train": 20, "n_test": 10, "epochs": 2, "batch_size": 10},
)
def random_label_fit(
    p: RandomLabelsParams, seeds: Sequence[int], device: torch.device
) -> pd.DataFrame:
    """One row per seed: the time to fit its (corrupted) training labels, ``epochs_to_fit`` =
    SGD steps until the training error is 0 on the whole training set (checked every
    ``check_every`` steps), over steps per epoch
    (censored at the budget ``epochs`` when it never fits, ``fitted`` = 0); the training error
    and the accuracy on held-out digits (true labels) at that moment; the fraction of labels
    the corruption changed, and the number of parameters."""
    seeds = tuple(seeds)
    x_all, y_all = load_digits_tensors()
    x_all = x_all - x_all.mean(dim=0)
    xs, ys, xt, yt, orders, changed = [], [], [], [], [], []
    for seed in seeds:
        g = stream(seed, "overparam/random-labels")
        tr, te = random_split(len(x_all), (p.n_train, p.n_test), g)
        labels = corrupt_labels(y_all[tr], p.corruption, p.corrupt,
                                stream(seed, "overparam/random-labels/corrupt"))
        changed.append(float((labels != y_all[tr]).double().mean()))
        xs.append(x_all[tr])
        ys.append(labels)
        xt.append(x_all[te])
        yt.append(y_all[te])
        orders.append(epoch_orders([g], p.epochs, p.n_train)[0])
    x, y, x_test, y_test = (torch.stack(t).to(device) for t in (xs, ys, xt, yt))
    order = torch.stack(orders).to(device)
    net = SeedMLP(streams(seeds, "overparam/random-labels/init"),
                  [x.shape[-1]] + [p.width] * p.hidden_layers + [10], init="he").to(device)
    layers = [t.detach() for t in (*net.weights, *net.biases)]
    n_layers = len(net.weights)
    velocity = [torch.zeros_like(t) for t in layers]

    def classify(params: list[torch.Tensor], xb: torch.Tensor) -> torch.Tensor:
        return net.forward_with(params[:n_layers], params[n_layers:], xb)

    def predict(xs: torch.Tensor) -> torch.Tensor:
        """Each live seed's predicted classes on its inputs ``xs`` (S, N, d), in chunks of
        :data:`PREDICT_CHUNK` seeds."""
        return torch.cat([classify([t[i:i + PREDICT_CHUNK] for t in layers],
                                   xs[i:i + PREDICT_CHUNK]).argmax(-1)
                          for i in range(0, len(xs), PREDICT_CHUNK)])

    def loss_fn(params: list[torch.Tensor], xb: torch.Tensor, yb: torch.Tensor) -> torch.Tensor:
        logits = classify(params, xb)
        return torch.nn.functional.cross_entropy(logits.flatten(0, 1), yb.flatten(),
                                                 reduction="none").view(yb.shape).mean(dim=1)

    steps_per_epoch = math.ceil(p.n_train / p.batch_size)
    n_seeds = len(seeds)
    n_params = sum(t[0].numel() for t in layers)
    fit_step = torch.full((n_seeds,), float(p.epochs * steps_per_epoch), dtype=torch.float64)
    fitted = torch.zeros(n_seeds, dtype=torch.bool)
    train_err = torch.ones(n_seeds, dtype=torch.float64)
    test_acc = torch.zeros(n_seeds, dtype=torch.float64)
    # Seeds still fitting; a seed's row is final once it fits, so it leaves the batch (its
    # networks, velocities and data are dropped): a seed's computations do not depend on the
    # others of the batch, so this changes no row, only the cost.
    live = torch.arange(n_seeds)

    def snapshot(which: torch.Tensor) -> None:
        """Training error and held-out accuracy of the live seeds marked by ``which``."""
        with torch.no_grad():
            err = (predict(x) != y).double().mean(dim=1).cpu()
            acc = (predict(x_test) == y_test).double().mean(dim=1).cpu()
        train_err[live[which]], test_acc[live[which]] = err[which], acc[which]

    step = 0
    for epoch in range(p.epochs):
        for idx in minibatches(order[:, epoch], p.batch_size):
            idx = idx[live.to(device)]
            xb = x.gather(1, idx.unsqueeze(-1).expand(-1, -1, x.shape[-1]))
            yb = y.gather(1, idx)
            params = [t.requires_grad_() for t in layers]
            grads = torch.autograd.grad(loss_fn(params, xb, yb).sum(), params)
            velocity = [p.momentum * v + gr for v, gr in zip(velocity, grads, strict=True)]
            layers = [(t - p.lr * v).detach() for t, v in zip(params, velocity, strict=True)]
            step += 1
            if step % p.check_every:
                continue
            with torch.no_grad():
                wrong = (predict(x) != y).any(dim=1).cpu()
            if wrong.all():
                continue
            fit_step[live[~wrong]] = float(step)
            fitted[live[~wrong]] = True
            snapshot(~wrong)
            keep = wrong.nonzero().squeeze(1)
            live = live[keep]
            keep = keep.to(device)
            layers, velocity = [t[keep] for t in layers], [v[keep] for v in velocity]
            x, y, x_test, y_test = x[keep], y[keep], x_test[keep], y_test[keep]
            if not len(live):
                break
        if not len(live):
            break
    if len(live):
        snapshot(torch.ones(len(live), dtype=torch.bool))
    return pd.DataFrame({"seed": list(seeds), "n_params": n_params, "changed": changed,
                         "fitted": fitted.double().numpy(),
                         "epochs_to_fit": (fit_step / steps_per_epoch).numpy(),
                         "train_error": train_err.numpy(), "test_acc": test_acc.numpy()})


# --------------------------------------------------------------------------------------------
# SGD with constant versus vanishing steps


class SGDStepParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    schedule: Literal["constant", "inverse"] = Field(
        "inverse", description="constant: α_k = α; inverse: α_k = α k₀ / (k₀ + k)"
    )
    step: float = Field(0.05, gt=0, description="α in units of 1/dim (≈ 1/E‖a‖²)")
    k0: int = Field(200, ge=1, description="k₀ of the inverse schedule")
    dim: int = Field(10, ge=1)
    n: int = Field(200, ge=2, description="samples of the least-squares problem")
    noise: float = Field(1.0, gt=0, description="sd of the label noise (no interpolation)")
    batch_size: int = Field(1, ge=1)
    horizons: list[int] = Field(
        [1000, 2000, 4000, 8000, 16000], min_length=2, description="K at which to measure"
    )


@experiment(
    "sgd_step_schedule",
    family="overparam",
    params=SGDStepParams,
    columns=("steps", "log_steps", "late_move", "dist_opt"),
    example={"horizons": [4, 8], "n": 10, "dim": 3},
)
def sgd_step_schedule(p: SGDStepParams, seeds: Sequence[int], device: torch.device
                      ) -> pd.DataFrame:
    """Rows per (seed, horizon K): ``late_move = ‖x_K − x_{⌊K/2⌋}‖`` and
    ``dist_opt = ‖x_K − x*‖`` (x* the least-squares minimizer), with ``log_steps = ln K``."""
    seeds = tuple(seeds)
    total = max(p.horizons)
    checkpoints = sorted({k for h in p.horizons for k in (h, h // 2)})
    data, picks = [], []
    for seed in seeds:
        g = stream(seed, "overparam/sgd")
        data.append(linear_regression(p.n, p.dim, p.noise, g, dtype=torch.float64))
        picks.append(torch.randint(0, p.n, (total, p.batch_size), generator=g))
    a = torch.stack([d[0] for d in data]).to(device)  # (S, n, dim)
    y = torch.stack([d[1] for d in data]).to(device)  # (S, n)
    pick = torch.stack(picks, dim=1).to(device)  # (K, S, B)
    x_star = torch.linalg.lstsq(a, y.unsqueeze(-1)).solution.squeeze(-1)
    rows_of = torch.arange(len(seeds), device=device).view(1, -1, 1)
    a_pick, y_pick = a[rows_of, pick], y[rows_of, pick]  # (K, S, B, dim), (K, S, B)
    base = p.step / p.dim
    rates = [base if p.schedule == "constant" else base * p.k0 / (p.k0 + k)
             for k in range(total)]
    x = torch.zeros(len(seeds), p.dim, dtype=torch.float64, device=device)
    saved: dict[int, torch.Tensor] = {0: x}
    for step in range(total):
        a_b = a_pick[step]
        resid = (a_b * x.unsqueeze(1)).sum(dim=-1) - y_pick[step]
        x = x - (rates[step] / p.batch_size) * (a_b * resid.unsqueeze(-1)).sum(dim=1)
        if step + 1 in checkpoints:
            saved[step + 1] = x
    rows = []
    for horizon in p.horizons:
        move = (saved[horizon] - saved[horizon // 2]).norm(dim=-1)
        dist = (saved[horizon] - x_star).norm(dim=-1)
        rows += [{"seed": seed, "steps": horizon, "log_steps": math.log(horizon),
                  "late_move": float(move[i]), "dist_opt": float(dist[i])}
                 for i, seed in enumerate(seeds)]
    return pd.DataFrame(rows)
