"""SEG+ and BC-SEG+ on a small GAN: a mixture of 8 Gaussians on a ring, against SGDA and Adam.

Claim (Pethick, Fercoq, Latafat, Patrinos, Cevher, "Solving stochastic weak Minty variational
inequalities without increasing batch size", ICLR 2023; the seeds' slide "GANs with SEG+",
"A performance comparison of GAN training by Adam, EG with stochastic gradients, and SEG+"):
the bias-corrected stochastic extragradient BC-SEG+ (Algorithm 1: a fixed extrapolation step γ,
a diminishing update step α_kγ, one extra oracle call per iteration and a constant batch size)
converges for operators satisfying the weak Minty inequality ⟨V(z), z − z*⟩ ≥ ρ‖V(z)‖² with
ρ > −γ/2, and the tutorial shows it training a GAN where stochastic EG and Adam struggle.

The game (kind ``gan_mixture``). Data: the uniform mixture of 8 Gaussians N(μ_m, σ²I), μ_m =
R(cos 2πm/8, sin 2πm/8). Generator G_θ: latent ε ~ N(0, I_{latent}) → MLP → ℝ²; discriminator
D_φ: ℝ² → MLP → logit. The zero-sum GAN objective (Goodfellow et al. 2014)

    f(θ, φ) = E_x log σ(D_φ(x)) + E_ε log(1 − σ(D_φ(G_θ(ε))))

is minimized by θ and maximized by φ; the operator is V(z) = [∇_θ f, −∇_φ f], z = [θ, φ]
(all parameters of both players), estimated on a minibatch of ``batch`` real samples and
``batch`` latents (the stochastic oracle Ṽ(z, ξ); ξ = the minibatch). The algorithms of
``theorybench.methods.minmax`` (family ``minmax-algorithm``) run unchanged on this oracle:
``gda`` (simultaneous SGDA), ``alt-gda`` (alternating), ``eg`` (stochastic EG), ``seg+``
(SEG+ without bias correction) and ``bc-seg+`` (α_k = α₀/(1 + k/k_α), here with the spec's
``alpha_offset`` k_α); plus, defined here, ``adam`` (simultaneous Adam on Ṽ, β = (0.5, 0.999))
and ``bc-seg+noextra`` (BC-SEG+'s decaying update z⁺ = z − α_kγṼ(z) with the extrapolation
removed: SGDA with the same decaying step).

Measured at the end, per run, on ``eval_samples`` generated points (a fixed evaluation stream):

* ``modes``: the number of modes holding at least ``mode_share`` of the generated samples within
  3σ of μ_m (8 = full coverage);
* ``quality``: the fraction of generated samples within 3σ of some mode ("high-quality");
* ``grad_norm``: ‖V(z_K)‖₂ over both players' parameters, estimated on one evaluation batch of
  ``eval_samples`` real samples and latents (a large-batch stand-in for the full-batch operator);
* ``disc_acc``: the discriminator's accuracy (real vs generated) on that batch.

Seeds are the leading dimension of z (one row per seed, all seeds stepped at once); each seed's
initialization, minibatches and evaluation come from its own streams ``gan_mixture/init``,
``/batch``, ``/eval``, so its row does not depend on the other seeds of the cell.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, ClassVar, Literal

import pandas as pd
import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict, Field

from theorybench.methods.minmax import BCSEGPlus, Method, SEGPlus, State
from theorybench.registry import experiment, get_method
from theorybench.streams import streams

Tensor = torch.Tensor
MODES = 8


class GanMixtureParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    algorithm: Literal["gda", "alt-gda", "eg", "seg+", "bc-seg+", "adam", "bc-seg+noextra"] = \
        Field("bc-seg+", description="training method")
    radius: float = Field(2.0, gt=0, description="ring radius R")
    sigma: float = Field(0.05, gt=0, description="σ of each mode")
    latent: int = Field(2, ge=1, description="latent dimension")
    hidden: int = Field(32, ge=1, description="width of both players' two hidden layers")
    batch: int = Field(64, ge=1, description="real samples and latents per oracle call")
    steps: int = Field(2000, ge=1, description="iterations K")
    lr: float = Field(0.05, gt=0, description="γ (extrapolation step / SGDA step)")
    adam_lr: float = Field(1e-3, gt=0, description="Adam's step")
    alpha0: float = Field(0.5, gt=0, le=1, description="α₀ of SEG+ and BC-SEG+")
    alpha_offset: float = Field(1000.0, gt=0, description="k_α of α_k = α₀/(1 + k/k_α)")
    eval_samples: int = Field(2000, ge=8, description="generated points for the metrics")
    mode_share: float = Field(0.02, gt=0, lt=1, description="share of samples a covered mode holds")


class GanOracle:
    """Ṽ(z, ξ) of the module docstring for a batch of seeds z (S, P); ξ (S, batch·(2 + latent))
    packs each seed's real samples and latents."""

    def __init__(self, p: GanMixtureParams, generators: Sequence[torch.Generator]) -> None:
        self.p, self.generators = p, list(generators)
        h, d = p.hidden, p.latent
        self.g_shapes = [(d, h), (1, h), (h, h), (1, h), (h, 2), (1, 2)]
        self.d_shapes = [(2, h), (1, h), (h, h), (1, h), (h, 1), (1, 1)]
        self.n_x = sum(math.prod(s) for s in self.g_shapes)
        self.dim = self.n_x + sum(math.prod(s) for s in self.d_shapes)
        angles = 2 * math.pi * torch.arange(MODES) / MODES
        self.centers = p.radius * torch.stack([angles.cos(), angles.sin()], 1)
        self.noise = 1.0  # methods check ``oracle.noise`` only through draw()

    def sample(self, n: int, gen: torch.Generator) -> tuple[Tensor, Tensor]:
        """``n`` real samples and ``n`` latents from one seed's generator."""
        modes = torch.randint(0, MODES, (n,), generator=gen)
        real = self.centers[modes] + self.p.sigma * torch.randn(n, 2, generator=gen)
        return real, torch.randn(n, self.p.latent, generator=gen)

    def draw(self, like: Tensor) -> Tensor:
        b = self.p.batch
        rows = [torch.cat([r.flatten(), e.flatten()]) for r, e in
                (self.sample(b, g) for g in self.generators)]
        return torch.stack(rows).to(like.dtype)

    def unpack(self, xi: Tensor) -> tuple[Tensor, Tensor]:
        b = self.p.batch if xi.shape[1] == self.p.batch * (2 + self.p.latent) else \
            xi.shape[1] // (2 + self.p.latent)
        return xi[:, : 2 * b].view(-1, b, 2), xi[:, 2 * b:].view(-1, b, self.p.latent)

    @staticmethod
    def _split(flat: Tensor, shapes: list[tuple[int, int]]) -> list[Tensor]:
        out, k = [], 0
        for s in shapes:
            n = math.prod(s)
            out.append(flat[:, k:k + n].view(-1, *s))
            k += n
        return out

    @staticmethod
    def _mlp(params: list[Tensor], x: Tensor) -> Tensor:
        w1, b1, w2, b2, w3, b3 = params
        h = torch.relu(torch.baddbmm(b1, x, w1))
        h = torch.relu(torch.baddbmm(b2, h, w2))
        return torch.baddbmm(b3, h, w3)

    def generate(self, z: Tensor, eps: Tensor) -> Tensor:
        return self._mlp(self._split(z[:, : self.n_x], self.g_shapes), eps)

    def discriminate(self, z: Tensor, x: Tensor) -> Tensor:
        return self._mlp(self._split(z[:, self.n_x:], self.d_shapes), x).squeeze(-1)

    def objective(self, z: Tensor, real: Tensor, eps: Tensor) -> Tensor:
        """f(θ, φ) per seed, shape (S,)."""
        d_real = self.discriminate(z, real)
        d_fake = self.discriminate(z, self.generate(z, eps))
        return (F.logsigmoid(d_real) + F.logsigmoid(-d_fake)).mean(1)

    def operator(self, z: Tensor, real: Tensor, eps: Tensor) -> Tensor:
        with torch.enable_grad():
            z = z.detach().requires_grad_(True)
            (grad,) = torch.autograd.grad(self.objective(z, real, eps).sum(), z)
        return torch.cat([grad[:, : self.n_x], -grad[:, self.n_x:]], 1)

    def __call__(self, z: Tensor, xi: Tensor | None = None) -> Tensor:
        real, eps = self.unpack(self.draw(z) if xi is None else xi)
        return self.operator(z, real, eps)

    def init(self) -> Tensor:
        """PyTorch's nn.Linear initialization, U(±1/√fan_in), per seed."""
        rows = []
        for g in self.generators:
            parts = [(torch.rand(s, generator=g) * 2 - 1) / math.sqrt(fan)
                     for shapes in (self.g_shapes, self.d_shapes)
                     for s, fan in zip(shapes, [shapes[i - i % 2][0] for i in range(6)],
                                       strict=True)]
            rows.append(torch.cat([t.flatten() for t in parts]))
        return torch.stack(rows)


class Adam(Method):
    """Simultaneous Adam on Ṽ (both players), β = (0.5, 0.999), ε = 1e-8; ``lr`` is Adam's."""

    betas: ClassVar[tuple[float, float]] = (0.5, 0.999)

    def init(self, oracle: Any, z: Tensor) -> State:
        return {"m": torch.zeros_like(z), "v": torch.zeros_like(z)}

    def step(self, oracle: Any, z: Tensor, state: State, lr: float, k: int) -> Tensor:
        b1, b2 = self.betas
        g = oracle(z)
        state["m"] = b1 * state["m"] + (1 - b1) * g
        state["v"] = b2 * state["v"] + (1 - b2) * g * g
        m_hat = state["m"] / (1 - b1 ** (k + 1))
        v_hat = state["v"] / (1 - b2 ** (k + 1))
        return z - lr * m_hat / (v_hat.sqrt() + 1e-8)


class NoExtrapolation(Method):
    """BC-SEG+'s update with the extrapolation removed: z⁺ = z − α_kγṼ(z)."""

    alpha0: float = BCSEGPlus.alpha0
    alpha_offset: float = BCSEGPlus.alpha_offset

    def step(self, oracle: Any, z: Tensor, state: State, lr: float, k: int) -> Tensor:
        return z - self.alpha0 / (1 + k / self.alpha_offset) * lr * oracle(z)


def make_method(p: GanMixtureParams) -> Method:
    """The method instance, with SEG+'s α₀ and k_α set from the spec."""
    if p.algorithm == "adam":
        return Adam()
    if p.algorithm == "bc-seg+noextra":
        method: Method = NoExtrapolation()
    else:
        method = get_method("minmax-algorithm", p.algorithm)()
    if isinstance(method, BCSEGPlus | SEGPlus | NoExtrapolation):
        method.alpha0, method.alpha_offset = p.alpha0, p.alpha_offset  # type: ignore[misc]
    return method


def coverage(points: Tensor, centers: Tensor, sigma: float,
             share: float) -> tuple[Tensor, Tensor]:
    """(modes covered, high-quality fraction) per seed of ``points`` (S, N, 2): a point is
    high-quality within 3σ of its nearest centre; a mode is covered when at least ``share`` of
    the points are high-quality points nearest to it."""
    dist = torch.cdist(points, centers.to(points.dtype).expand(len(points), *centers.shape))
    near, which = dist.min(-1)
    good = near <= 3 * sigma
    counts = torch.stack([(good & (which == m)).double().mean(1)
                          for m in range(centers.shape[0])], 1)
    return (counts >= share).sum(1).double(), good.double().mean(1)


@torch.no_grad()
def evaluate(oracle: GanOracle, z: Tensor, p: GanMixtureParams,
             generators: Sequence[torch.Generator]) -> dict[str, Tensor]:
    """The end-of-training metrics of the module docstring, one value per seed."""
    pairs = [oracle.sample(p.eval_samples, g) for g in generators]
    real = torch.stack([r for r, _ in pairs]).to(z.dtype)
    eps = torch.stack([e for _, e in pairs]).to(z.dtype)
    fake = oracle.generate(z, eps)
    modes, quality = coverage(fake, oracle.centers, p.sigma, p.mode_share)
    v = oracle.operator(z, real, eps)
    d_real, d_fake = oracle.discriminate(z, real), oracle.discriminate(z, fake)
    return {
        "modes": modes,
        "quality": quality,
        "grad_norm": v.norm(dim=1).double(),
        "disc_acc": (((d_real > 0).double().mean(1) + (d_fake < 0).double().mean(1)) / 2),
    }


@experiment(
    "gan_mixture",
    family="minmax",
    params=GanMixtureParams,
    columns=("modes", "quality", "grad_norm", "disc_acc"),
    example={"steps": 3, "hidden": 4, "batch": 8, "eval_samples": 16},
    cost=lambda p: p.steps * p.batch * p.hidden * 2,
)
def gan_mixture(p: GanMixtureParams, seeds: Sequence[int], device: torch.device) -> pd.DataFrame:
    """One row per seed: the end-of-training metrics of the module docstring (CPU, float32)."""
    oracle = GanOracle(p, streams(seeds, "gan_mixture/batch"))
    init_oracle = GanOracle(p, streams(seeds, "gan_mixture/init"))
    z = init_oracle.init()
    method = make_method(p)
    lr = p.adam_lr if p.algorithm == "adam" else p.lr
    state = method.init(oracle, z)
    for k in range(p.steps):
        z = method.step(oracle, z, state, lr, k)
    metrics = evaluate(oracle, z, p, streams(seeds, "gan_mixture/eval"))
    finite = torch.isfinite(z).all(1)
    table = pd.DataFrame({"seed": list(seeds),
                          **{k: v.where(finite, torch.nan).numpy() for k, v in metrics.items()}})
    return table
