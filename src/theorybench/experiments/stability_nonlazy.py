"""Perturbation stability of two-layer ReLU networks trained in the non-lazy regime, against width.

Claim (Zhu, Liu, Chrysos, Cevher, "Robustness in deep learning: the good (width), the bad
(depth), and the ugly (initialization)", NeurIPS 2022, non-lazy theorem for two-layer nets;
CVPR/ICASSP 2023 tutorials): for the two-layer network

    h(a) = α Σ_{j=1}^m v_j ReLU(x_jᵀa),   v_j ~ N(0, β₂²),  x_j ~ N(0, β₁² I_d),

with α = 1 and β₁ = β₂ = β ~ 1/m^c, c > 1.5 (the sufficient condition α ≫ (m^{3/2} Σ β_l)^L
for non-lazy training, L = 2), m ≫ n² and standard assumptions, after training the perturbation
stability obeys P(h, ε) ≤ Õ(n / m^{c+1.5}) w.h.p.: width helps.

Measured: P(h, ε)/ε = E_a E_â |∇ₐh(a)ᵀ(a − â)| / ε, â uniform in the ℓ₂ ball of radius ε
around a, a uniform on the unit sphere of ℝᵈ (held-out points). For â uniform in the ball the
inner expectation is exactly ε · c_d · ‖∇ₐh(a)‖₂ with c_d = d/(d+1) · Γ(d/2)/(√π Γ((d+1)/2))
(:func:`theorybench.experiments.stability.ball_projection_mean`), so P/ε = c_d E_a‖∇ₐh(a)‖
is computed in closed form (no Monte-Carlo noise) with ∇ₐh(a) = Σ_j v_j 1[x_jᵀa > 0] x_j.

Training: full-batch gradient descent on 0.5 · mean_i (h(a_i) − y_i)² over ``n_train`` points
on the sphere with labels y_i = sign(a_i,1) (each seed its own points), with the analytic
gradients, step ``lr``/λ at initialization (λ = λ_max(Θ₀)/n, the Gauss–Newton curvature from
the empirical NTK Θ₀), capped at ``max_step`` (the cap binds in the non-lazy scaling, whose
initial curvature is ~m^{1−2c}); each seed stops once its loss is ``target_loss_ratio`` of its
initial loss, so every width is compared at the same relative training loss.

Per seed the exponent of P in m is the least-squares slope of ln(P/ε) against ln m over the
widths (``exponent``; ``exponent_init`` the same at initialization), beside the bound's
``predicted_exponent`` = −(c + 1.5). Non-laziness is certified by the relative weight change
κ = (‖X(T) − X(0)‖_F + ‖v(T) − v(0)‖) / (‖X(0)‖_F + ‖v(0)‖) (the seeds' lazy-training ratio)
and the relative change of the empirical NTK on the training points. A bias-free ReLU net is
positively 1-homogeneous, h(a) = ∇ₐh(a)ᵀa, so |h(a)| ≤ ‖∇ₐh(a)‖ on the sphere: a net that fits
labels of size one on the training points has an input gradient of order one there; the rows
report E|h| on the held-out points and the scale-free P/(ε E|h|) beside the raw P/ε.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
import torch
from pydantic import BaseModel, ConfigDict, Field

from theorybench.experiments.stability import ball_projection_mean
from theorybench.registry import experiment
from theorybench.streams import stream

DTYPE = torch.float64


class NonLazyParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    c: float = Field(2.0, description="β = beta0 · m^(−c) for both layers (c > 1.5: non-lazy)")
    beta0: float = Field(1.0, gt=0, description="constant in front of m^(−c)")
    alpha: float = Field(1.0, gt=0, description="output multiplier α")
    widths: list[int] = Field([256, 512, 1024], min_length=2,
                              description="hidden widths m, all trained in one cell so that "
                              "each seed's exponent is fitted over them")
    dim: int = Field(16, ge=2, description="input dimension d (inputs on the unit sphere)")
    n_train: int = Field(8, ge=1, description="training points n")
    n_eval: int = Field(128, ge=1, description="held-out points over which P is averaged")
    train_steps: int = Field(1000, ge=0, description="most gradient-descent steps (0: init)")
    target_loss_ratio: float = Field(0.1, gt=0, le=1, description="a seed stops once its loss "
                                     "is this fraction of its initial loss")
    lr: float = Field(0.5, gt=0, lt=2, description="step in units of 1/λ at initialization")
    max_step: float = Field(1.0, gt=0, description="cap on the step when λ is tiny")


def ball_mean(d: int) -> float:
    """c_d = E|u₁| for u uniform in the unit ball of ℝᵈ (the closed form of the ball term)."""
    return ball_projection_mean(d)


def sphere(n: int, d: int, g: torch.Generator) -> torch.Tensor:
    """``n`` points uniform on the unit sphere of ℝᵈ."""
    x = torch.randn(n, d, generator=g, dtype=DTYPE)
    return x / x.norm(dim=-1, keepdim=True)


def forward(x: torch.Tensor, v: torch.Tensor, a: torch.Tensor, alpha: float) -> torch.Tensor:
    """h(a) for weights X (S, m, d), v (S, m) and inputs a (S, N, d): (S, N)."""
    return alpha * (torch.relu(a @ x.mT) @ v.unsqueeze(-1)).squeeze(-1)


def input_gradient(x: torch.Tensor, v: torch.Tensor, a: torch.Tensor, alpha: float
                   ) -> torch.Tensor:
    """∇ₐh(a) = α Σ_j v_j 1[x_jᵀa > 0] x_j: (S, N, d)."""
    active = (a @ x.mT > 0).to(x.dtype)
    return alpha * (active * v.unsqueeze(1)) @ x


def ntk(x: torch.Tensor, v: torch.Tensor, a: torch.Tensor, alpha: float) -> torch.Tensor:
    """Empirical NTK over both layers, Θ(a, a') = α² Σ_j [ReLU(x_jᵀa) ReLU(x_jᵀa')
    + v_j² 1[x_jᵀa > 0] 1[x_jᵀa' > 0] aᵀa']: (S, N, N)."""
    pre = a @ x.mT
    feat = torch.relu(pre)
    act = (pre > 0).to(x.dtype) * v.unsqueeze(1)
    return alpha**2 * (feat @ feat.mT + (act @ act.mT) * (a @ a.mT))


def loss_gradients(x: torch.Tensor, v: torch.Tensor, a: torch.Tensor, y: torch.Tensor,
                   alpha: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per-seed loss 0.5 · mean_i r_i² (r = h(a_i) − y_i) and its gradients in X and v."""
    n = a.shape[1]
    pre = a @ x.mT  # (S, n, m)
    feat = torch.relu(pre)
    r = alpha * (feat @ v.unsqueeze(-1)).squeeze(-1) - y
    grad_v = alpha * (feat.mT @ r.unsqueeze(-1)).squeeze(-1) / n
    grad_x = alpha * ((pre > 0).to(x.dtype) * r.unsqueeze(-1) * v.unsqueeze(1)).mT @ a / n
    return 0.5 * (r**2).mean(dim=1), grad_x, grad_v


def power_law_exponent(widths: Sequence[int], values: torch.Tensor) -> torch.Tensor:
    """Least-squares slope of ln(values) against ln(width); values (S, W) → (S,)."""
    lm = torch.log(torch.tensor(list(widths), dtype=DTYPE))
    lm = lm - lm.mean()
    lv = values.log()
    return (lm * (lv - lv.mean(dim=1, keepdim=True))).sum(dim=1) / (lm**2).sum()


def _train_width(p: NonLazyParams, seeds: tuple[int, ...], m: int, a: torch.Tensor,
                 y: torch.Tensor, e: torch.Tensor) -> dict[str, torch.Tensor]:
    """Initialise each seed's width-m net from its own stream, train it, and measure."""
    beta = p.beta0 * m ** (-p.c)
    gens = [stream(s, f"stability_nonlazy/init/{m}") for s in seeds]
    x = torch.stack([torch.randn(m, p.dim, generator=g, dtype=DTYPE) for g in gens]) * beta
    v = torch.stack([torch.randn(m, generator=g, dtype=DTYPE) for g in gens]) * beta
    x0, v0 = x.clone(), v.clone()
    cd = ball_mean(p.dim)
    p_init = cd * input_gradient(x, v, e, p.alpha).norm(dim=-1).mean(dim=1)
    theta0 = ntk(x, v, a, p.alpha)
    curvature = torch.linalg.eigvalsh(theta0)[:, -1] / a.shape[1]
    step = (p.lr / curvature.clamp_min(1e-300)).clamp_max(p.max_step)
    loss0, _, _ = loss_gradients(x, v, a, y, p.alpha)
    loss = loss0
    steps = torch.zeros(len(seeds), dtype=DTYPE)
    for _ in range(p.train_steps):
        loss, grad_x, grad_v = loss_gradients(x, v, a, y, p.alpha)
        active = (loss > p.target_loss_ratio * loss0).to(DTYPE)
        if not bool(active.any()):
            break
        steps += active
        x = x - (step * active)[:, None, None] * grad_x
        v = v - (step * active)[:, None] * grad_v
    loss, _, _ = loss_gradients(x, v, a, y, p.alpha)
    grad = input_gradient(x, v, e, p.alpha)
    out_abs = forward(x, v, e, p.alpha).abs().mean(dim=1)
    p_trained = cd * grad.norm(dim=-1).mean(dim=1)
    moved = (x - x0).flatten(1).norm(dim=1) + (v - v0).norm(dim=1)
    kappa = moved / (x0.flatten(1).norm(dim=1) + v0.norm(dim=1))
    theta = ntk(x, v, a, p.alpha)
    ntk_change = (theta - theta0).flatten(1).norm(dim=1) / theta0.flatten(1).norm(dim=1)
    return {"p_init": p_init, "p_trained": p_trained, "output_mean_abs": out_abs,
            "loss_ratio": loss / loss0, "train_loss": loss, "kappa": kappa,
            "ntk_change": ntk_change, "steps": steps, "step": step}


@experiment(
    "stability_nonlazy",
    family="stability",
    params=NonLazyParams,
    columns=("width", "stability_per_eps", "stability_init", "stability_rel", "output_mean_abs",
             "exponent", "exponent_init", "predicted_exponent", "exponent_gap", "loss_ratio",
             "train_loss", "rel_weight_change", "ntk_change", "steps", "lr_effective"),
    example={"widths": [8, 16], "dim": 4, "n_train": 4, "n_eval": 8, "train_steps": 5},
)
def stability_nonlazy(p: NonLazyParams, seeds: Sequence[int], device: torch.device
                      ) -> pd.DataFrame:
    """One row per seed and width: P/ε after training and at initialization (closed form), the
    scale-free P/(ε E|h|), E|h|, the seed's fitted exponents of P in m (trained, init) and the
    bound's −(c + 1.5), the training loss and its ratio to the initial one, κ, the NTK change,
    the steps taken and the step size. Computed on the CPU in float64 (the initial weights are
    of order m^(−c))."""
    seeds = tuple(seeds)
    data = [stream(s, "stability_nonlazy/data") for s in seeds]
    a = torch.stack([sphere(p.n_train, p.dim, g) for g in data])
    e = torch.stack([sphere(p.n_eval, p.dim, g) for g in data])
    y = torch.where(a[..., 0] > 0, 1.0, -1.0).to(DTYPE)
    per_width = [_train_width(p, seeds, m, a, y, e) for m in p.widths]
    trained = torch.stack([r["p_trained"] for r in per_width], dim=1)
    init = torch.stack([r["p_init"] for r in per_width], dim=1)
    exponent = power_law_exponent(p.widths, trained)
    exponent_init = power_law_exponent(p.widths, init)
    predicted = -(p.c + 1.5)
    rows = []
    for k, m in enumerate(p.widths):
        r = per_width[k]
        for i, seed in enumerate(seeds):
            rows.append({
                "seed": seed, "width": m,
                "stability_per_eps": float(r["p_trained"][i]),
                "stability_init": float(r["p_init"][i]),
                "stability_rel": float(r["p_trained"][i]
                                       / r["output_mean_abs"][i].clamp_min(1e-300)),
                "output_mean_abs": float(r["output_mean_abs"][i]),
                "exponent": float(exponent[i]), "exponent_init": float(exponent_init[i]),
                "predicted_exponent": predicted,
                "exponent_gap": float(exponent[i]) - predicted,
                "loss_ratio": float(r["loss_ratio"][i]), "train_loss": float(r["train_loss"][i]),
                "rel_weight_change": float(r["kappa"][i]),
                "ntk_change": float(r["ntk_change"][i]),
                "steps": float(r["steps"][i]), "lr_effective": float(r["step"][i]),
            })
    return pd.DataFrame(rows)
