"""Perturbation stability of ReLU networks: width, depth and initialization.

Claims (Zhu, Liu, Chrysos, Cevher, "Robustness in deep learning: the good (width), the bad
(depth), and the ugly (initialization)", NeurIPS 2022; CVPR 2023 tutorial): in the lazy-training
regime, width improves perturbation stability once the network is wide; depth hurts it under He
and NTK initialization and helps under LeCun initialization; for CNNs under He initialization the
stability grows steeply with depth.

Measured quantity: the perturbation stability per unit radius

    P(h, ε)/ε = E_{a, â} |∇ₐh(a)ᵀ(a − â)| / ε,

with a from held-out data (‖a‖₂ = 1) and â uniform in the ℓ₂ ball of radius ε around a, estimated
by Monte Carlo with ``n_perturb`` draws of â per point. For â uniform in the ball the inner
expectation has the closed form ε · c_d · ‖∇ₐh(a)‖₂ with c_d = d/(d+1) · Γ(d/2)/(√π Γ((d+1)/2))
(:func:`ball_projection_mean`); it is reported beside the estimate as a check, which makes P/ε
independent of ε. Both are measured at initialization and after lazy training: full-batch
gradient descent on the squared loss with step ``lr``/λ_max (λ_max the top Hessian eigenvalue at
initialization, by power iteration), until the loss is ``target_loss_ratio`` of its initial value.

Laziness is certified for the quantity measured, not only for the weights: beside the relative
weight change κ = Σ_l ‖X_l(T) − X_l(0)‖_F / Σ_l ‖X_l(0)‖_F the rows report the relative change of
the input gradient, E_a‖∇ₐh_T(a) − ∇ₐh_0(a)‖ / E_a‖∇ₐh_0(a)‖ (``grad_change``), and of the
empirical NTK on ``n_ntk`` training points, ‖Θ_T − Θ_0‖_F / ‖Θ_0‖_F (``ntk_change``, from
:func:`theorybench.ntk.empirical_ntk`). Fitting ±1 labels from an output of order one moves
∇ₐh by order one whatever the width (the fitted kernel interpolant has an input gradient of its
own), so ``targets: residual`` fits h_0(a_i) + s·y_i instead: the function must move by s, and
with s small against the initial output the trained net is lazy for ∇ₐh too. A read-out scale
(``readout_scale``, e.g. 1/√m: the mean-field read-out) shrinks the initial output against the
same s and breaks that laziness.

Scale-free measure: ``stability_rel`` = P/(ε·E_a|h(a)|), the closed-form P/ε divided by the
mean absolute output on the same points (for a bias-free ReLU net h(a) = ∇ₐh(a)ᵀa, so the ratio
is the inverse alignment of the gradient with the input, free of the output's scale).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Literal

import pandas as pd
import torch
from pydantic import BaseModel, ConfigDict, Field

from theorybench.data.digits import load_digits_tensors
from theorybench.models.cnn import CNN_INITS, cnn_forward, init_cnn
from theorybench.models.mlp import SeedMLP
from theorybench.registry import experiment
from theorybench.splits import random_split
from theorybench.streams import stream, streams

Weights = list[torch.Tensor]


class StabilityParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    arch: Literal["mlp", "cnn"] = Field("mlp", description="fully-connected or convolutional")
    init: Literal["lecun", "he", "ntk", "xavier", "mean_field"] = "he"
    width: int = Field(128, ge=1, description="hidden units m (channels for the CNN)")
    depth: int = Field(4, ge=2, description="number of weight layers L")
    data: Literal["digits", "sphere"] = Field("digits", description="inputs, scaled to ‖a‖=1")
    dim: int = Field(32, ge=2, description="input dimension of the sphere data")
    n_train: int = Field(64, ge=1)
    n_eval: int = Field(128, ge=1, description="points a over which P is averaged")
    eps: float = Field(0.1, gt=0, description="perturbation radius ε")
    n_perturb: int = Field(32, ge=1, description="Monte-Carlo draws of â per point")
    train_steps: int = Field(300, ge=0, description="most gradient-descent steps (0: init only)")
    target_loss_ratio: float = Field(
        0.1, gt=0, le=1, description="a seed stops training once its loss is this fraction of "
        "its initial loss, so every network is compared at the same degree of fit")
    lr: float = Field(0.5, gt=0, lt=2, description="step in units of 1/λ_max at init")
    power_iters: int = Field(10, ge=1, description="power iterations for λ_max")
    max_step: float = Field(0.5, gt=0, description="cap on the step when λ_max is tiny")
    output_relu: bool = Field(False, description="the paper's ReLU on the read-out")
    targets: Literal["labels", "residual"] = Field(
        "labels", description="labels: ±s (or {0, s}); residual: h_0(a) + s·(±1), a lazy fit")
    label_scale: float = Field(1.0, gt=0, description="s, the size of the labels")
    readout_scale: float = Field(1.0, gt=0, description="multiplier of the output (1/√m: the "
                                 "mean-field read-out under He hidden layers)")
    n_ntk: int = Field(16, ge=0, description="training points for the empirical NTK (0: none)")


def ball_projection_mean(d: int) -> float:
    """E|u₁| for u uniform in the unit ball of ℝᵈ: d/(d+1) · Γ(d/2) / (√π Γ((d+1)/2))."""
    return d / (d + 1) * math.exp(math.lgamma(d / 2) - math.lgamma((d + 1) / 2)) / math.sqrt(
        math.pi)


def uniform_ball(n: int, k: int, d: int, g: torch.Generator) -> torch.Tensor:
    """``k`` points uniform in the unit ball of ℝᵈ for each of ``n`` centres: (n, k, d)."""
    direction = torch.randn(n, k, d, generator=g)
    direction = direction / direction.norm(dim=-1, keepdim=True)
    radius = torch.rand(n, k, 1, generator=g) ** (1.0 / d)
    return direction * radius


def _data(p: StabilityParams) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Train inputs, binary train targets, eval inputs; a fixed split shared by all seeds.
    Targets are ±1, or {0, 1} with the output ReLU (which cannot reach −1)."""
    if p.data == "digits":
        x, y = load_digits_tensors()
        positive = y % 2 == 0
    else:
        g = stream(0, "stability/data")
        x = torch.randn(p.n_train + p.n_eval, p.dim, generator=g)
        positive = x[:, 0] > 0
    target = (positive.float() if p.output_relu else positive.float() * 2 - 1) * p.label_scale
    x = x / x.norm(dim=1, keepdim=True)
    train, held = random_split(len(x), (p.n_train, p.n_eval), stream(0, "stability/split"))
    return x[train], target[train], x[held]


Forward = Callable[[Weights, torch.Tensor], torch.Tensor]
LossAndGrads = Callable[[Weights], tuple[torch.Tensor, Weights]]


def _model(p: StabilityParams, seeds: tuple[int, ...], in_dim: int, device: torch.device
           ) -> tuple[Weights, Forward, float]:
    """Initial weights (each seed's from its ``stability/init`` stream), the forward map and
    the MLP's read-out divisor α (``mean_field``: the last hidden width; 1 for the CNN).
    MLP weights are kept in the paper's orientation X_l ∈ ℝ^{m×p}: (S, d_l, d_{l−1})."""
    gens = streams(seeds, "stability/init")
    if p.arch == "mlp":
        net = SeedMLP(gens, [in_dim] + [p.width] * (p.depth - 1) + [1], init=p.init,
                      bias=False, readout="relu" if p.output_relu else "identity",
                      scalar_output=True)
        return ([w.detach().mT.to(device) for w in net.weights],
                lambda w, a: p.readout_scale * net.forward_with([x.mT for x in w], [], a),
                net.alpha)
    if p.init not in CNN_INITS:
        raise ValueError(f"the CNN supports init {sorted(CNN_INITS)}, not {p.init!r}")
    side = math.isqrt(in_dim)
    weights = init_cnn(gens, p.width, p.depth, p.init, device)
    return weights, lambda w, a: p.readout_scale * cnn_forward(
        w, a.reshape(*a.shape[:-1], side, side)), 1.0


def mlp_loss_and_grads(weights: Weights, x: torch.Tensor, target: torch.Tensor, scale: float,
                       alpha: float, output_relu: bool) -> tuple[torch.Tensor, Weights]:
    """Per-seed squared loss ½·mean_i (h(a_i) − b_i)² of the seed-batched bias-free ReLU MLP
    h(a) = scale · ρ(X_L relu(… relu(X_1 a)))/α (weights X_l of shape (S, d_l, d_{l−1}), ρ the
    identity or the read-out ReLU) and its gradients in X_l, by back-propagation written out:
    one forward pass, then the backward pass through the stored activations. It performs
    autograd's operations on :meth:`SeedMLP.forward_with` in the same order, so the gradients
    are bitwise autograd's (``tests/test_stability.py``), at about half the cost on the small
    matrices of these tasks, where autograd's per-node overhead dominates."""
    hidden = [x.expand(weights[0].shape[0], *x.shape)]
    for w in weights[:-1]:
        hidden.append(torch.relu(hidden[-1] @ w.mT))
    readout = hidden[-1] @ weights[-1].mT
    if output_relu:
        readout = torch.relu(readout)
    out = readout / alpha if alpha != 1.0 else readout
    diff = scale * out.squeeze(-1) - target
    loss = 0.5 * (diff**2).mean(dim=1)
    grad = (torch.full_like(diff, 0.5) / diff.shape[1] * (2.0 * diff) * scale).unsqueeze(-1)
    if alpha != 1.0:
        grad = grad / alpha
    if output_relu:
        grad = torch.ops.aten.threshold_backward(grad, readout, 0)
    grads: Weights = []
    for k in range(len(weights) - 1, 0, -1):
        grads.insert(0, grad.mT @ hidden[k])  # contiguous: the update is cheaper than on .mT
        grad = torch.ops.aten.threshold_backward(grad @ weights[k], hidden[k], 0)
    # the input is shared by the seeds (expanded): autograd's order of product, for its bits
    grads.insert(0, (hidden[0].mT @ grad).mT)
    return loss, grads


def autograd_loss_and_grads(forward: Forward, weights: Weights, x: torch.Tensor,
                            target: torch.Tensor) -> tuple[torch.Tensor, Weights]:
    """Per-seed squared loss ½·mean_i (h(a_i) − b_i)² of any seed-batched model and its
    gradients, by autograd."""
    params = [w.detach().requires_grad_() for w in weights]
    loss = 0.5 * ((forward(params, x) - target) ** 2).mean(dim=1)
    return loss.detach(), list(torch.autograd.grad(loss.sum(), params))


def _per_seed_dot(u: Weights, v: Weights) -> torch.Tensor:
    return sum((a * b).flatten(1).sum(1) for a, b in zip(u, v, strict=True))  # type: ignore[return-value]


def top_hessian_eigenvalue(loss: Callable[[Weights], torch.Tensor], weights: Weights,
                           iters: int, gens: Sequence[torch.Generator]) -> torch.Tensor:
    """λ_max of each seed's block of the Hessian of ``loss`` (a sum of per-seed losses), by
    power iteration with Hessian-vector products from a start drawn with each seed's
    generator in ``gens``: shape (S,)."""
    params = [w.detach().requires_grad_() for w in weights]
    grads = torch.autograd.grad(loss(params), params, create_graph=True)
    v = [torch.stack([torch.randn(w.shape[1:], generator=g) for g in gens]).to(w.device)
         for w in weights]
    lam = torch.zeros(weights[0].shape[0], device=weights[0].device)
    for _ in range(iters):
        norm = _per_seed_dot(v, v).sqrt().clamp_min(1e-30)
        v = [x / norm.view(-1, *[1] * (x.dim() - 1)) for x in v]
        hv = torch.autograd.grad(grads, params, grad_outputs=v, retain_graph=True)
        lam = _per_seed_dot(hv, v)
        v = [h.detach() for h in hv]
    return lam.detach()


class Probe(BaseModel):
    """One phase's measurements, per seed: P/ε by Monte Carlo and in closed form, E|h|, and
    the input gradients (S, N, d) and NTK (S, n, n) kept for the change from init."""
    model_config = ConfigDict(arbitrary_types_allowed=True)
    monte_carlo: torch.Tensor
    closed: torch.Tensor
    output_scale: torch.Tensor
    grad: torch.Tensor
    ntk: torch.Tensor | None


def _probe(forward: Callable[[Weights, torch.Tensor], torch.Tensor], weights: Weights,
           a: torch.Tensor, u: torch.Tensor, x_ntk: torch.Tensor | None) -> Probe:
    """P/ε by Monte Carlo (``u``: each seed's draws in the unit ball, (S, N, K, d)) and in
    closed form, E|h|, ∇ₐh, and the empirical NTK on ``x_ntk``."""
    s = weights[0].shape[0]
    inputs = a.expand(s, *a.shape).clone().requires_grad_()
    out = forward(weights, inputs)
    (grad,) = torch.autograd.grad(out.sum(), inputs)
    monte_carlo = torch.einsum("snd,snkd->snk", grad, u).abs().mean(dim=(1, 2))
    closed = ball_projection_mean(a.shape[-1]) * grad.norm(dim=-1).mean(dim=1)
    ntk = None if x_ntk is None else seed_ntk(forward, weights, x_ntk)
    return Probe(monte_carlo=monte_carlo.detach(), closed=closed.detach(),
                 output_scale=out.detach().abs().mean(dim=1), grad=grad.detach(), ntk=ntk)


def seed_ntk(forward: Callable[[Weights, torch.Tensor], torch.Tensor], weights: Weights,
             x: torch.Tensor) -> torch.Tensor:
    """Each seed's empirical NTK Θ_ij = ⟨∇_X h(x_i), ∇_X h(x_j)⟩ over all its weights:
    (S, n, n), the J Jᵀ of :func:`theorybench.ntk.empirical_ntk`. One backward pass per point
    of the sum over seeds gives every seed's row of J at once (seeds share no weights), which is
    an order of magnitude faster here than ``vmap`` over seeds of ``vmap(jacrev)``."""
    params = [w.detach().requires_grad_() for w in weights]
    out = forward(params, x)  # (S, n)
    rows = [torch.cat([g.flatten(1) for g in torch.autograd.grad(
        out[:, i].sum(), params, retain_graph=i < x.shape[0] - 1)], dim=1)
        for i in range(x.shape[0])]
    jac = torch.stack(rows, dim=1)  # (S, n, P)
    return (jac @ jac.mT).detach()


def gradient_change(new: torch.Tensor, old: torch.Tensor) -> torch.Tensor:
    """Per seed, E_a‖∇ₐh_T(a) − ∇ₐh_0(a)‖ / E_a‖∇ₐh_0(a)‖ for gradients of shape (S, N, d)."""
    return ((new - old).norm(dim=-1).mean(dim=1)
            / old.norm(dim=-1).mean(dim=1).clamp_min(1e-30))


def kernel_change(new: torch.Tensor, old: torch.Tensor) -> torch.Tensor:
    """Per seed, ‖Θ_T − Θ_0‖_F / ‖Θ_0‖_F for kernels of shape (S, n, n)."""
    return (new - old).flatten(1).norm(dim=1) / old.flatten(1).norm(dim=1).clamp_min(1e-30)


@experiment(
    "perturbation_stability",
    family="stability",
    params=StabilityParams,
    columns=("phase", "stability_per_eps", "stability_closed_form", "stability_rel",
             "output_mean_abs", "train_loss", "loss_ratio", "rel_weight_change", "grad_change",
             "ntk_change", "lr_effective"),
    example={"width": 8, "depth": 3, "n_train": 16, "n_eval": 8, "n_perturb": 4,
             "train_steps": 3, "power_iters": 2, "n_ntk": 4},
)
def perturbation_stability(
    p: StabilityParams, seeds: Sequence[int], device: torch.device
) -> pd.DataFrame:
    """Rows per seed for ``phase`` ∈ {init, trained}: P/ε (Monte Carlo and closed form), the
    scale-free P/(ε E|h|), E|h|, the training loss and its ratio to the initial loss, and the
    changes from init of the weights (κ), of ∇ₐh and of the empirical NTK; the step used.
    The seeds run in chunks of :data:`SEED_CHUNK`."""
    seeds = tuple(seeds)
    chunks = [_stability_rows(p, seeds[i:i + SEED_CHUNK], device)
              for i in range(0, len(seeds), SEED_CHUNK)]
    # the init rows of every seed, then the trained ones ("init" < "trained"; stable sort)
    return pd.concat(chunks).sort_values("phase", kind="stable", ignore_index=True)


SEED_CHUNK = 4
"""Seeds trained together by :func:`perturbation_stability`: a chunk's weights and activations
stay in cache (about 10 % faster than eight seeds at once for the depth sweeps); the rows are
the whole batch's (tests)."""


def _stability_rows(p: StabilityParams, seeds: tuple[int, ...], device: torch.device
                    ) -> pd.DataFrame:
    """:func:`perturbation_stability`'s rows for one chunk of seeds."""
    x_train, y_train, x_eval = (t.to(device) for t in _data(p))
    weights, forward, alpha = _model(p, seeds, x_train.shape[1], device)
    u = torch.stack([uniform_ball(len(x_eval), p.n_perturb, x_eval.shape[1], g)
                     for g in streams(seeds, "stability/perturb")]).to(device)
    x_ntk = x_train[:p.n_ntk] if p.n_ntk and p.train_steps else None
    with torch.no_grad():
        b_train = (forward(weights, x_train) + y_train if p.targets == "residual"
                   else y_train.expand(len(seeds), -1))

    def loss(w: Weights) -> torch.Tensor:
        return 0.5 * ((forward(w, x_train) - b_train) ** 2).mean(dim=1).sum()

    def per_seed_loss(w: Weights) -> torch.Tensor:
        with torch.no_grad():
            return 0.5 * ((forward(w, x_train) - b_train) ** 2).mean(dim=1)

    def loss_and_grads(w: Weights) -> tuple[torch.Tensor, Weights]:
        if p.arch == "mlp":
            return mlp_loss_and_grads(w, x_train, b_train, p.readout_scale, alpha,
                                      p.output_relu)
        return autograd_loss_and_grads(forward, w, x_train, b_train)

    start = [w.clone() for w in weights]
    loss0 = per_seed_loss(weights)
    step = torch.zeros(len(seeds), device=device)
    zero = torch.zeros(len(seeds))
    init = _probe(forward, weights, x_eval, u, x_ntk)
    rows = _rows(seeds, "init", init, loss0, loss0, zero, zero, zero, step)
    if p.train_steps:
        lam = top_hessian_eigenvalue(loss, weights, p.power_iters,
                                     streams(seeds, "stability/power"))
        step = (p.lr / lam.clamp_min(1e-12)).clamp_max(p.max_step)
        for _ in range(p.train_steps):
            current, grads = loss_and_grads(weights)
            active = current > p.target_loss_ratio * loss0
            if not active.any():
                break
            seed_step = step * active
            weights = [w.detach() - seed_step.view(-1, *[1] * (w.dim() - 1)) * gr
                       for w, gr in zip(weights, grads, strict=True)]
        moved = sum(_frobenius(w - w0) for w, w0 in zip(weights, start, strict=True))
        kappa = moved / sum(_frobenius(w0) for w0 in start)
        trained = _probe(forward, weights, x_eval, u, x_ntk)
        ntk_moved = (kernel_change(trained.ntk, init.ntk)
                     if trained.ntk is not None and init.ntk is not None
                     else torch.full((len(seeds),), float("nan")))
        rows += _rows(seeds, "trained", trained, per_seed_loss(weights), loss0, kappa,
                      gradient_change(trained.grad, init.grad), ntk_moved, step)
    return pd.DataFrame(rows)


def _frobenius(w: torch.Tensor) -> torch.Tensor:
    return w.flatten(1).norm(dim=1)


def _rows(seeds: tuple[int, ...], phase: str, probe: Probe, loss: torch.Tensor,
          loss0: torch.Tensor, kappa: torch.Tensor, grad_moved: torch.Tensor,
          ntk_moved: torch.Tensor, step: torch.Tensor) -> list[dict[str, float | int | str]]:
    return [{
        "seed": seed, "phase": phase,
        "stability_per_eps": float(probe.monte_carlo[i]),
        "stability_closed_form": float(probe.closed[i]),
        "stability_rel": float(probe.closed[i] / probe.output_scale[i].clamp_min(1e-30)),
        "output_mean_abs": float(probe.output_scale[i]),
        "train_loss": float(loss[i]), "loss_ratio": float(loss[i] / loss0[i].clamp_min(1e-30)),
        "rel_weight_change": float(kappa[i]), "grad_change": float(grad_moved[i]),
        "ntk_change": float(ntk_moved[i]), "lr_effective": float(step[i]),
    } for i, seed in enumerate(seeds)]
