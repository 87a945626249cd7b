"""Deep image prior: early-stopped denoising works with Adam, while gradient descent follows the
network's neural tangent filter.

Claim (Ulyanov, Vedaldi, Lempitsky, "Deep image prior", CVPR 2018; Tachella, Tang, Davies, "The
neural tangent link between CNN denoisers and non-local filters", CVPR 2021; the seeds' slide
"why DIP works primarily with Adam and not SGD"): fitting a randomly initialized convolutional
network f(θ; z) from a fixed random input z to a noisy image y = x + σε by minimizing
½‖f(θ; z) − y‖², the early-stopped output is a good denoiser when trained with Adam; trained by
(stochastic) gradient descent, the network stays close to its linearization, whose gradient-flow
output is the neural-tangent filter

    x̂(τ) = y + e^{−τΘ} (f₀ − y),      Θ = J Jᵀ,  J = ∂f(θ₀; z)/∂θ  (N × P, N pixels),

and Adam, which moves the hidden weights further, does better than that filter.

Measured per (seed, image) and method: the PSNR 10 log₁₀(1/MSE) of the reconstruction against
the clean image x (values in [0, 1]); ``psnr_best`` is the best over the iterations (oracle
early stopping), ``psnr_stop`` the PSNR at the first iteration whose residual ‖f − y‖²/N falls
to σ² (the discrepancy principle: a stopping rule that needs σ, not x; the last iterate when it
never does). Methods, all from the same θ₀, z and noise (common random numbers):

* ``adam``: Adam (β = 0.9, 0.999, ε = 1e-8), step ``adam_lr``, ``steps`` iterations;
* ``sgd``: full-batch gradient descent (one image: no minibatch), step ``sgd_scale / λ_max(Θ)``
  (``sgd_scale`` < 2 is stable for the linearization), ``steps × sgd_steps_factor`` iterations;
* ``ntk``: the filter above, best PSNR over τ on a log grid from one SGD step to 1000 times
  SGD's budget (``psnr_stop``: the discrepancy principle along τ), the reference of Tachella et
  al.; it is what gradient descent on the linearization reaches with an unlimited budget;
* ``ntk-budget``: the same filter's best PSNR over τ ≤ SGD's budget (iterations × step), what
  SGD would reach in its iterations if the network stayed linear (lazy).

``model: linearized`` (a control) trains f_lin(θ) = f₀ + J(θ − θ₀) instead of the network with
the same two optimizers: Adam can then only re-weight the fixed tangent features (a diagonal
preconditioner), not adapt them.

Other columns: ``best_step`` (iteration of the best PSNR; for ``ntk`` the best τ in units of
SGD's step, comparable with SGD's iteration budget), ``psnr_noisy`` (PSNR of y),
``weight_change`` (‖θ − θ₀‖/‖θ₀‖ of the hidden convolutions at the best iteration).

Network (Ulyanov's hourglass, scaled down): z of ``input_channels`` channels U(0, 0.1) at the
image size; ``levels`` times conv3×3 + ReLU + 2×2 average pooling, a conv3×3 + ReLU, ``levels``
times bilinear ×2 upsampling + conv3×3 + ReLU, a 1×1 convolution to one channel; He-normal
weights, zero biases. The networks of all seeds, images and methods are trained together as one
grouped convolution. Randomness per seed: ``dip/noise`` (ε per image), ``dip/input`` (z),
``dip/init`` (θ₀).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import pandas as pd
import torch
import torch.nn.functional as F  # noqa: N812
from pydantic import BaseModel, ConfigDict, Field

from theorybench.data.sample_images import CROPS, sample_crop
from theorybench.registry import experiment
from theorybench.streams import stream

Params = list[torch.Tensor]


class DipParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    images: list[str] = Field(["china", "flower"], min_length=1,
                              description=f"crops of scikit-learn's sample images: {sorted(CROPS)}")
    dim: int = Field(16, ge=8, le=96,
                     description="image side in pixels (dim × dim); a multiple of 2^levels")
    block: int = Field(4, ge=1, le=8, description="photograph pixels averaged per image pixel")
    sigma: float = Field(25 / 255, gt=0, description="noise standard deviation (images in [0, 1])")
    width: int = Field(16, ge=1, description="channels of every hidden convolution")
    levels: int = Field(2, ge=0, le=4, description="down/up-sampling levels of the hourglass")
    input_channels: int = Field(8, ge=1, description="channels of the fixed random input z")
    steps: int = Field(400, ge=1, description="Adam iterations (and SGD's, times the factor)")
    adam_lr: float = Field(0.01, gt=0)
    sgd_scale: float = Field(1.0, gt=0, lt=2, description="SGD step × λ_max(Θ)")
    sgd_steps_factor: int = Field(1, ge=1, description="SGD's iterations / Adam's")
    model: Literal["network", "linearized"] = Field(
        "network", description="train the network or its linearization at θ₀")
    tau_grid: int = Field(400, ge=10, description="points of the τ grid of the NTK filter")


def psnr(x: torch.Tensor, clean: torch.Tensor) -> torch.Tensor:
    """10 log₁₀(1 / MSE) over the last two dimensions (images in [0, 1])."""
    return -10 * torch.log10((x - clean).square().mean((-2, -1)))


def shapes(p: DipParams) -> list[tuple[int, int, int]]:
    """(out, in, kernel) of each convolution, input first."""
    w = p.width
    convs = [(w, p.input_channels, 3)] + [(w, w, 3)] * (2 * p.levels)
    return convs + [(1, w, 1)]


def init_params(p: DipParams, count: int, gen: torch.Generator) -> Params:
    """He-normal weights (count, out, in, k, k) and zero biases (count, out), per convolution."""
    out: Params = []
    for o, i, k in shapes(p):
        out.append(torch.randn(count, o, i, k, k, generator=gen) * math.sqrt(2.0 / (i * k * k)))
        out.append(torch.zeros(count, o))
    return out


def forward(params: Params, z: torch.Tensor, levels: int) -> torch.Tensor:
    """Outputs (K, H, W) of K networks (grouped convolutions) on inputs z (K, C, H, W)."""
    k, _, h, w = z.shape
    x = z.reshape(1, -1, h, w)

    def conv(x: torch.Tensor, i: int) -> torch.Tensor:
        weight, bias = params[2 * i], params[2 * i + 1]
        return F.conv2d(x, weight.reshape(-1, *weight.shape[2:]), bias.reshape(-1),
                        padding=weight.shape[-1] // 2, groups=k)

    layer = 0
    for _ in range(levels):
        x = F.avg_pool2d(torch.relu(conv(x, layer)), 2)
        layer += 1
    x = torch.relu(conv(x, layer))
    layer += 1
    for _ in range(levels):
        x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
        x = torch.relu(conv(x, layer))
        layer += 1
    return conv(x, layer).reshape(k, h, w)


def jacobian(params: Params, z: torch.Tensor, levels: int) -> torch.Tensor:
    """J = ∂f/∂θ (N × P) of one network (params with a leading dimension 1, z (1, C, H, W)):
    N copies of the network as one grouped convolution, copy n's loss its n-th pixel, so that
    copy n's gradient is the n-th row of J (one forward and one backward pass)."""
    n = z.shape[-1] * z.shape[-2]
    copies = [t.expand(n, *t.shape[1:]).clone().requires_grad_(True) for t in params]
    out = forward(copies, z.expand(n, *z.shape[1:]), levels).reshape(n, n)
    grads = torch.autograd.grad(out.diagonal().sum(), copies)
    return torch.cat([g.reshape(n, -1) for g in grads], 1).detach()


def ntk_filter(theta: torch.Tensor, f0: torch.Tensor, y: torch.Tensor, clean: torch.Tensor,
               sigma: float, taus: torch.Tensor, budget: float = math.inf
               ) -> tuple[float, float, float, float]:
    """Best PSNR of x̂(τ) = y + e^{−τΘ}(f₀ − y) over ``taus``, that τ, the PSNR at the first τ
    whose residual ‖x̂ − y‖²/N is at most σ², and the best PSNR over τ ≤ ``budget`` (float64)."""
    lam, vec = torch.linalg.eigh(theta.double())
    coef = vec.T @ (f0 - y).double().reshape(-1)
    decay = torch.exp(-taus[:, None] * lam.clamp(min=0)[None])
    x = y.double().reshape(-1)[None] + (decay * coef) @ vec.T
    quality = psnr(x.reshape(len(taus), *clean.shape), clean.double())
    best = int(quality.argmax())
    resid = (x - y.double().reshape(-1)).square().mean(1)
    hit = torch.nonzero(resid <= sigma ** 2)
    stop = int(hit[0]) if len(hit) else len(taus) - 1
    within = quality[taus <= budget]
    return (float(quality[best]), float(taus[best]), float(quality[stop]),
            float(within.max()) if len(within) else float("nan"))


def _track(out: torch.Tensor, y: torch.Tensor, clean: torch.Tensor, sigma: float, step: int,
           state: dict[str, torch.Tensor], params: Params, init: Params) -> None:
    """Update best/stop PSNR records with the outputs ``out`` (K, H, W) of iteration ``step``."""
    with torch.no_grad():
        q = psnr(out, clean)
        better = q > state["best"]
        state["best"] = torch.where(better, q, state["best"])
        state["best_step"] = torch.where(better, torch.tensor(float(step)), state["best_step"])
        hidden = range(0, len(params) - 2, 2)
        change = torch.sqrt(sum((params[i] - init[i]).square().flatten(1).sum(1) for i in hidden)
                            / sum(init[i].square().flatten(1).sum(1) for i in hidden))
        state["change"] = torch.where(better, change, state["change"])
        fresh = (~state["stopped"]) & ((out - y).square().mean((1, 2)) <= sigma ** 2)
        state["stop"] = torch.where(fresh, q, state["stop"])
        state["stopped"] |= fresh
        state["last"] = q


def _run(p: DipParams, init: Params, z: torch.Tensor, y: torch.Tensor, clean: torch.Tensor,
         lr_sgd: torch.Tensor, jac: torch.Tensor | None, f0: torch.Tensor
         ) -> dict[str, dict[str, torch.Tensor]]:
    """Train the K networks (or their linearizations) twice, with Adam and with SGD, as one batch
    of 2K (first K: Adam, last K: SGD); best/stop PSNR per network and method."""
    k = y.shape[0]
    init2 = [torch.cat([t, t]) for t in init]
    params = [t.clone().requires_grad_(True) for t in init2]
    y2, z2, clean2, f02 = (torch.cat([t, t]) for t in (y, z, clean, f0))
    is_adam = torch.cat([torch.ones(k), torch.zeros(k)])
    sgd_lr = torch.cat([torch.zeros(k), lr_sgd])
    adam_steps, sgd_steps = p.steps, p.steps * p.sgd_steps_factor
    state = {"best": torch.full((2 * k,), -math.inf), "best_step": torch.zeros(2 * k),
             "change": torch.zeros(2 * k), "stop": torch.zeros(2 * k),
             "stopped": torch.zeros(2 * k, dtype=torch.bool), "last": torch.zeros(2 * k)}
    m = [torch.zeros_like(t) for t in params]
    v = [torch.zeros_like(t) for t in params]
    b1, b2, eps = 0.9, 0.999, 1e-8
    jac2 = None if jac is None else torch.cat([jac, jac])
    sizes = [t[0].numel() for t in params]
    for step in range(max(adam_steps, sgd_steps) + 1):
        if jac2 is None:
            out = forward(params, z2, p.levels)
            grads = list(torch.autograd.grad(0.5 * (out - y2).square().sum(), params))
            out = out.detach()
        else:
            with torch.no_grad():
                delta = torch.cat([(a - b).flatten(1) for a, b in zip(params, init2, strict=True)],
                                  1)
                # one matrix-vector product per network (faster than a batched bmm of vectors)
                out = f02 + torch.stack([torch.mv(jac2[i], delta[i])
                                         for i in range(2 * k)]).reshape(y2.shape)
                resid = (out - y2).reshape(2 * k, -1)
                g = torch.stack([resid[i] @ jac2[i] for i in range(2 * k)])
                grads = [gi.reshape(t.shape) for gi, t in zip(g.split(sizes, 1), params,
                                                                strict=True)]
        live = torch.cat([torch.full((k,), step <= adam_steps),
                          torch.full((k,), step <= sgd_steps)])
        prev = {key: val.clone() for key, val in state.items()}
        _track(out, y2, clean2, p.sigma, step, state, [t.detach() for t in params], init2)
        for key in state:           # a method past its budget keeps its records
            state[key] = torch.where(live, state[key], prev[key])
        if not bool(live.any()):
            break
        with torch.no_grad():
            for i, (t, g) in enumerate(zip(params, grads, strict=True)):
                g = torch.nan_to_num(g)
                m[i].mul_(b1).add_((1 - b1) * g)
                v[i].mul_(b2).add_((1 - b2) * g.square())
                mh = m[i] / (1 - b1 ** (step + 1))
                vh = v[i] / (1 - b2 ** (step + 1))
                shape = (-1, *[1] * (t.dim() - 1))
                adam = p.adam_lr * mh / (vh.sqrt() + eps)
                update = torch.where(is_adam.reshape(shape) > 0, adam, sgd_lr.reshape(shape) * g)
                t.sub_(update * live.float().reshape(shape))
    state["stop"] = torch.where(state["stopped"], state["stop"], state["last"])
    return {name: {key: val[sl] for key, val in state.items()}
            for name, sl in (("adam", slice(0, k)), ("sgd", slice(k, 2 * k)))}


@experiment(
    "deep_image_prior",
    family="dip",
    params=DipParams,
    columns=("image", "method", "psnr_best", "psnr_stop", "best_step", "psnr_noisy",
             "weight_change", "lambda_max"),
    example={"images": ["china"], "dim": 8, "width": 2, "levels": 1, "input_channels": 2,
             "steps": 5, "tau_grid": 10},
    cost=lambda p: p.steps * (1 + p.sgd_steps_factor) * len(p.images) * p.dim ** 2
    * p.width ** 2 / 64,
)
def deep_image_prior(p: DipParams, seeds: Sequence[int], device: torch.device) -> pd.DataFrame:
    """One row per (seed, image, method ∈ {adam, sgd, ntk, ntk-budget}) (CPU, float32; ``device``
    unused)."""
    if p.dim % (2 ** p.levels):
        raise ValueError(f"size {p.dim} is not a multiple of 2^levels = {2 ** p.levels}")
    clean_one = torch.stack([sample_crop(name, p.dim, p.block) for name in p.images])  # (I, H, W)
    n_img = len(p.images)
    ys, zs, inits = [], [], []
    for seed in seeds:
        noise = torch.randn(n_img, p.dim, p.dim, generator=stream(seed, "dip/noise"))
        ys.append(clean_one + p.sigma * noise)
        zs.append(0.1 * torch.rand(n_img, p.input_channels, p.dim, p.dim,
                                   generator=stream(seed, "dip/input")))
        inits.append(init_params(p, n_img, stream(seed, "dip/init")))
    y = torch.cat(ys)
    z = torch.cat(zs)
    init = [torch.cat([ini[i] for ini in inits]) for i in range(len(inits[0]))]
    clean = clean_one.repeat(len(seeds), 1, 1)
    k = y.shape[0]
    with torch.no_grad():
        f0 = forward(init, z, p.levels)
    jacs, lam_max, ntk_rows = [], [], []
    for j in range(k):
        jac = jacobian([t[j:j + 1] for t in init], z[j:j + 1], p.levels)
        theta = jac @ jac.T
        lmax = float(torch.linalg.eigvalsh(theta.double())[-1])
        lr = p.sgd_scale / lmax
        sgd_steps = p.steps * p.sgd_steps_factor
        taus = lr * torch.cat([torch.zeros(1, dtype=torch.float64), torch.logspace(
            0, math.log10(1000 * sgd_steps), p.tau_grid, dtype=torch.float64)])
        best, tau, stop, within = ntk_filter(theta, f0[j], y[j], clean[j], p.sigma, taus,
                                             lr * sgd_steps)
        ntk_rows.append((best, stop, tau / lr, within))
        lam_max.append(lmax)
        if p.model == "linearized":
            jacs.append(jac)
    jac_all = torch.stack(jacs) if jacs else None
    lr_sgd = p.sgd_scale / torch.tensor(lam_max)
    results = _run(p, init, z, y, clean, lr_sgd, jac_all, f0)
    noisy = psnr(y, clean)
    rows = []
    for j in range(k):
        seed, image = seeds[j // n_img], p.images[j % n_img]
        base = {"seed": seed, "image": image, "psnr_noisy": float(noisy[j]),
                "lambda_max": lam_max[j]}
        for m, st in results.items():
            rows.append({**base, "method": m, "psnr_best": float(st["best"][j]),
                         "psnr_stop": float(st["stop"][j]), "best_step": float(st["best_step"][j]),
                         "weight_change": float(st["change"][j])})
        best, stop, tau, within = ntk_rows[j]
        rows.append({**base, "method": "ntk", "psnr_best": best, "psnr_stop": stop,
                     "best_step": tau, "weight_change": float("nan")})
        rows.append({**base, "method": "ntk-budget", "psnr_best": within,
                     "psnr_stop": float("nan"), "best_step": float("nan"),
                     "weight_change": float("nan")})
    cols = ["seed", "image", "method", "psnr_best", "psnr_stop", "best_step", "psnr_noisy",
            "weight_change", "lambda_max"]
    return pd.DataFrame(rows)[cols]
