"""Extrapolation: how trained networks behave beyond the range of their training data.

Claims (CVPR 2023 tutorial "Deep learning theory for computer vision", extrapolation slides):

* Xu, Zhang, Li, Du, Kawarabayashi, Jegelka, "How neural networks extrapolate: from feedforward
  to graph neural networks", ICLR 2021, Theorem 1: along any direction ``v`` with
  ``‖v‖ = maxᵢ‖xᵢ‖`` and points ``x = (t + h)v`` beyond the training data, the output of a
  trained two-layer ReLU MLP is (asymptotically) linear in ``h``. Their code scores linearity by
  the R² of a linear fit along random directions from 1.1× to 11× the training radius.
* Wu, Zhu, Liu, Chrysos, Cevher, "Extrapolation and spectral bias of neural nets with Hadamard
  product: a polynomial net study", NeurIPS 2022: a trained degree-``N`` polynomial net (the CCP
  model of Π-nets, ``models/polynomial.py``) follows a degree-``γ`` polynomial in ``h`` with
  ``γ ≤ N``, and so extrapolates a polynomial target better than a ReLU MLP. Their code: target
  ``x³ + x² − 5x + 5`` (the slides write ``−10x``), ``N = 3``, train ``U[−2.5, 2.5]``, test
  ``U[−5, 5]``; ``cos(2x)`` with ``N = 10``, train ``U[−3π/4, 3π/4]``.

Targets: the seeds' cubic ``x³ + x² − 10x + 5``, the code's ``x³ + x² − 5x + 5`` and ``cos(2x)``
(1-D, radius ``r`` as in Wu et al.); in ``dim = 8`` on the unit sphere, Xu et al.'s quadratic
``xᵀAx`` with ``A ~ U(−1, 1)^{d×d}`` (``quadratic``) and a positive semi-definite variant
``A = BᵀB/d``, ``B ~ N(0, 1)^{d×d}`` (``quadratic_psd``). With the indefinite ``A`` some random
directions have ``uᵀAu ≈ 0``: target and network are nearly flat along them, and a test of
linearity relative to the curve's own variation then measures only the network's small bends.
The PSD target grows along every direction.

Experiment kind ``extrapolation_fit``: per seed, draw ``n_train`` inputs of radius at most ``r``
(1-D: uniform on ``[−r, r]``; ``dim > 1``: uniform on the sphere of radius ``r``, as Xu et al.),
fit the model by full-batch Adam on the squared loss (seeds batched), and evaluate it along unit
directions ``u`` (1-D: ``+1`` and ``−1``; else ``n_directions`` random ones) at
``x = (1 + h) r u``, i.e. ``h`` is the distance beyond the training radius in units of ``r``:

* ``phase = extrapolation``: the output at ``fit_points`` values of ``h`` over ``fit_range``, per
  direction (rows for the ``degree`` rule: ``along: h, group: direction``);
* ``phase = summary``, one row per seed and model, over the same grid: with ``SS_res,k`` the
  residual sum of squares of the least-squares polynomial of degree ``k`` in ``h`` and ``SS_tot``
  the centred sum of squares of one direction's curve,
  ``r2_linear = mean_u (1 − SS_res,1 / SS_tot)`` (Xu et al.'s statistic; ``r2_linear_min`` the
  worst direction) and ``quad_gain = mean_u (SS_res,1 − SS_res,2) / SS_tot`` (the R² gained by a
  degree-2 fit: the curvature a line misses), ``log_nonlin = log10 max_u (1 − R²_u)`` (the
  worst direction's non-linearity, floored at 1e-12); the relative errors ``‖f − y‖₂ / ‖y‖₂`` on the
  training set (``train_rel_err``) and on a grid of ``h`` over ``error_range``
  (``extrap_rel_err``; ``[0, 1]`` is Wu et al.'s test range outside the training range);
* ``phase = curve``: prediction (``output``) and target value (``truth``) at ``x`` on a grid over
  ``±curve_extent · r`` along the first direction (``region``: ``train`` or ``extrapolation``),
  for plots.

With ``untrained_reference`` the model is also read before its first step (rows with model
``<model>_init``: the very weights it is trained from), so a ``compare`` rule can ask whether
training, not the architecture alone, makes the extrapolation linear: every ReLU network is
piecewise linear with finitely many kinks, trained or not.

With ``reference_mlp`` the cell also trains a two-layer-or-deeper ReLU MLP (``mlp_width``,
``mlp_depth``) on the same data, so the ``compare`` rule can pair the two models' errors over
seeds (``by: model``).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Sequence
from typing import Literal

import numpy as np
import pandas as pd
import torch
from pydantic import BaseModel, ConfigDict, Field, model_validator
from torch import nn

from theorybench.models.mlp import Activation, SeedMLP
from theorybench.models.polynomial import CCP
from theorybench.registry import experiment
from theorybench.streams import stream, streams

Target = Literal["cubic", "cubic_code", "cos2x", "quadratic", "quadratic_psd"]

TARGETS_1D: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "cubic": lambda x: x**3 + x**2 - 10 * x + 5,
    "cubic_code": lambda x: x**3 + x**2 - 5 * x + 5,
    "cos2x": lambda x: torch.cos(2 * x),
}
"""The seeds' 1-D targets: the slides' cubic, the cubic of Wu et al.'s code, and cos(2x)."""

QUADRATIC_DIM = 8
"""Input dimension of the quadratic targets when ``dim`` is not given (Xu et al.'s x_dim 8)."""

DEFAULT_RADIUS: dict[str, float] = {
    "cubic": 2.5, "cubic_code": 2.5, "cos2x": 3 * math.pi / 4, "quadratic": 1.0,
    "quadratic_psd": 1.0,
}
"""Training radius r of each target in the papers (Wu et al. for 1-D, Xu et al. for quadratic)."""

COLUMNS = (
    "phase", "model", "direction", "h", "x", "region", "output", "truth",
    "train_rel_err", "extrap_rel_err", "r2_linear", "r2_linear_min", "quad_gain", "log_nonlin",
)

NONLIN_FLOOR = 1e-12
"""Floor of ``1 − R²`` in ``log_nonlin``: float32 outputs cannot resolve smaller residuals."""


class ExtrapolationParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    target: Target = Field("cubic", description="cubic: x³+x²−10x+5 (slides); cubic_code: "
                           "x³+x²−5x+5 (Wu et al.'s code); cos2x; quadratic: xᵀAx, A ~ U(−1,1) "
                           "(Xu et al.); quadratic_psd: xᵀAx, A = BᵀB/d, B ~ N(0,1)")
    dim: int | None = Field(None, ge=1, description="input dimension; None: 1 for the 1-D "
                            "targets, 8 for the quadratic ones (Xu et al.)")
    model: Literal["mlp", "pn"] = Field("mlp", description="ReLU-style MLP or CCP polynomial net")
    activation: Activation = Field("relu", description="σ of the model (PN: inside the CCP "
                                   "recursion; identity is the papers' PN)")
    width: int = Field(128, ge=1, description="hidden units")
    depth: int = Field(2, ge=2, description="MLP weight layers (2: one hidden layer, Xu et al.)")
    degree: int = Field(3, ge=1, description="PN degree N")
    reference_mlp: bool = Field(False, description="also train a ReLU MLP on the same data")
    untrained_reference: bool = Field(False, description="also report the model at its "
                                      "initialization (model '<model>_init'): the same network "
                                      "before training, paired with it seed by seed")
    mlp_width: int = Field(128, ge=1, description="width of the reference MLP")
    mlp_depth: int = Field(2, ge=2, description="weight layers of the reference MLP")
    n_train: int = Field(128, ge=2, description="training points")
    radius: float | None = Field(None, gt=0, description="training radius r (None: the paper's)")
    steps: int = Field(1000, ge=1, description="full-batch Adam steps")
    lr: float = Field(1e-2, gt=0, description="Adam step size, cosine-decayed to 0")
    fit_range: tuple[float, float] = Field((0.1, 10.0), description="h range of the degree and "
                                           "R² fits (x = (1 + h) r u; Xu et al.: 1.1r to 11r)")
    fit_points: int = Field(24, ge=4, description="grid points of h per direction for the fits")
    error_range: tuple[float, float] = Field((0.0, 1.0), description="h range of extrap_rel_err "
                                             "(Wu et al.: up to twice the training radius)")
    error_points: int = Field(64, ge=2, description="grid points of h per direction for errors")
    n_directions: int = Field(4, ge=1, description="random directions when dim > 1")
    curve_points: int = Field(33, ge=2, description="grid points of the plotted curve")
    curve_extent: float = Field(2.0, gt=1.0, description="the curve spans x ∈ ±extent·r")

    @model_validator(mode="after")
    def _check(self) -> ExtrapolationParams:
        if self.target in TARGETS_1D and self.dim not in (None, 1):
            raise ValueError(f"target {self.target!r} is 1-D; dim must be 1")
        if self.reference_mlp and self.model != "pn":
            raise ValueError("reference_mlp compares a PN with an MLP; it needs model: pn")
        for name in ("fit_range", "error_range"):
            low, high = getattr(self, name)
            if not 0.0 <= low < high:
                raise ValueError(f"{name} must satisfy 0 <= low < high, got {(low, high)}")
        return self


def polyfit_ss(h: np.ndarray, y: np.ndarray, degree: int) -> tuple[np.ndarray, np.ndarray]:
    """Residual and total sums of squares ``(SS_res, SS_tot)`` of the least-squares polynomial of
    ``degree`` in ``h`` fitted to each curve ``y[..., :]`` (all curves share the grid ``h``)."""
    u = 2 * (h - h.min()) / (h.max() - h.min()) - 1
    basis = np.polynomial.chebyshev.chebvander(u, degree)
    projection = basis @ np.linalg.pinv(basis)
    y = np.asarray(y, dtype=float)
    ss_res = ((y - y @ projection.T) ** 2).sum(-1)
    ss_tot = ((y - y.mean(-1, keepdims=True)) ** 2).sum(-1)
    return ss_res, ss_tot


def r_squared(ss_res: np.ndarray, ss_tot: np.ndarray) -> np.ndarray:
    """``1 − SS_res / SS_tot``; a constant curve (``SS_tot = 0``) is a line: R² = 1."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(ss_tot > 0, 1 - ss_res / ss_tot, 1.0)


ADAM_BETAS, ADAM_EPS = (0.9, 0.999), 1e-8
"""Adam's moment decays and ε (``torch.optim.Adam``'s defaults)."""


def _train(model: nn.Module, x: torch.Tensor, y: torch.Tensor, steps: int, lr: float) -> None:
    """Full-batch Adam on Σ_s mean_i (f_s(x_si) − y_si)², step ``lr`` cosine-decayed towards 0
    (step t uses ``lr · (1 + cos(π t / steps)) / 2``). Adam acts elementwise, so the seeds train
    independently although they share one update. Written out (the update of
    ``torch.optim.Adam``) rather than through ``torch.optim``, whose first use imports
    ``torch._dynamo`` (seconds per process) and whose per-step bookkeeping outweighs these
    small networks' arithmetic."""
    params = list(model.parameters())
    state = adam_state(params)
    for t in range(steps):
        loss = ((model(x) - y) ** 2).mean(dim=1).sum()
        grads = torch.autograd.grad(loss, params)
        adam_update(params, grads, state, t, lr * 0.5 * (1 + math.cos(math.pi * t / steps)))


def adam_state(params: Sequence[torch.Tensor]) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Adam's first and second moments of ``params``, zero."""
    return [torch.zeros_like(q) for q in params], [torch.zeros_like(q) for q in params]


def adam_update(
    params: Sequence[torch.Tensor], grads: Sequence[torch.Tensor],
    state: tuple[list[torch.Tensor], list[torch.Tensor]], t: int, lr: float,
) -> None:
    """Step ``t`` (from 0) of Adam with step ``lr``, in place: ``torch.optim.Adam``'s update
    written out (see :func:`_train`)."""
    beta1, beta2 = ADAM_BETAS
    correction1, correction2 = 1 - beta1 ** (t + 1), 1 - beta2 ** (t + 1)
    with torch.no_grad():
        for q, g, m, v in zip(params, grads, *state, strict=True):
            m.lerp_(g, 1 - beta1)
            v.mul_(beta2).addcmul_(g, g, value=1 - beta2)
            denom = (v.sqrt() / math.sqrt(correction2)).add_(ADAM_EPS)
            q.addcdiv_(m, denom, value=-lr / correction1)


def _data(
    p: ExtrapolationParams, seeds: Sequence[int], r: float, dim: int
) -> tuple[torch.Tensor, torch.Tensor, Callable[[torch.Tensor], torch.Tensor]]:
    """Training inputs (S, n, d), unit directions (S, D, d) and the target function
    ``(S, m, d) -> (S, m)``."""
    xs, dirs, mats = [], [], []
    for seed in seeds:
        g = stream(seed, "extrapolation/data")
        if dim == 1:
            xs.append((torch.rand(p.n_train, 1, generator=g) * 2 - 1) * r)
            dirs.append(torch.tensor([[1.0], [-1.0]]))
        else:
            z = torch.randn(p.n_train, dim, generator=g)
            xs.append(z / z.norm(dim=1, keepdim=True) * r)
            v = torch.randn(p.n_directions, dim, generator=g)
            dirs.append(v / v.norm(dim=1, keepdim=True))
            if p.target == "quadratic":
                mats.append(torch.rand(dim, dim, generator=g) * 2 - 1)
            else:
                b = torch.randn(dim, dim, generator=g)
                mats.append(b.T @ b / dim)
    if mats:
        a = torch.stack(mats)

        def target(x: torch.Tensor) -> torch.Tensor:
            return torch.einsum("smi,sij,smj->sm", x, a, x)
    else:
        fn = TARGETS_1D[p.target]

        def target(x: torch.Tensor) -> torch.Tensor:
            return fn(x[..., 0])
    return torch.stack(xs), torch.stack(dirs), target


def _build(role: str, p: ExtrapolationParams, seeds: Sequence[int], dim: int) -> nn.Module:
    """The seed-batched model of ``role`` (``pn``, ``mlp`` or ``reference_mlp``), freshly
    initialized from its own stream of each seed."""
    gens = streams(seeds, f"extrapolation/{role}")
    if role == "pn":
        return CCP(gens, dim, p.width, p.degree, p.activation)
    width, depth, act = ((p.width, p.depth, p.activation) if role == "mlp"
                         else (p.mlp_width, p.mlp_depth, "relu"))
    # Xu et al.'s networks: nn.Linear layers (biases, default init) and a linear read-out
    return SeedMLP(gens, [dim] + [width] * (depth - 1) + [1], activation=act,
                   scalar_output=True, draw_order="weights_first")


def _rows(
    name: str, model: nn.Module, p: ExtrapolationParams, seeds: Sequence[int], r: float,
    x_train: torch.Tensor, dirs: torch.Tensor, target: Callable[[torch.Tensor], torch.Tensor],
) -> list[pd.DataFrame]:
    """The three phases of rows for one trained (seed-batched) model."""
    n_seeds, n_dirs = dirs.shape[:2]
    seed_col = np.asarray(seeds)

    def along(h: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        """Outputs and targets (S, D, H) at x = (1 + h) r u."""
        x = (1 + h)[None, None, :, None] * r * dirs[:, :, None, :]
        flat = x.reshape(n_seeds, -1, x.shape[-1])
        out = model(flat).reshape(n_seeds, n_dirs, -1)
        return out.double().numpy(), target(flat).reshape(n_seeds, n_dirs, -1).double().numpy()

    def rel_err(out: np.ndarray, y: np.ndarray) -> np.ndarray:
        axes = tuple(range(1, out.ndim))
        return np.sqrt(((out - y) ** 2).sum(axes) / (y**2).sum(axes))

    with torch.no_grad():
        h_fit = torch.linspace(*p.fit_range, p.fit_points)
        out_fit = along(h_fit)[0]
        out_err, y_err = along(torch.linspace(*p.error_range, p.error_points))
        train_err = rel_err(model(x_train).double().numpy(), target(x_train).double().numpy())
        s_curve = torch.linspace(-p.curve_extent, p.curve_extent, p.curve_points)
        x_curve = s_curve[None, :, None] * r * dirs[:, :1, :]
        out_curve, y_curve = model(x_curve).numpy(), target(x_curve).numpy()

    h = h_fit.double().numpy()
    res1, tot = polyfit_ss(h, out_fit, 1)
    res2, _ = polyfit_ss(h, out_fit, 2)
    r2_lin = r_squared(res1, tot)
    summary = pd.DataFrame({
        "seed": seed_col, "phase": "summary", "model": name,
        "train_rel_err": train_err, "extrap_rel_err": rel_err(out_err, y_err),
        "r2_linear": r2_lin.mean(1), "r2_linear_min": r2_lin.min(1),
        "quad_gain": (r_squared(res2, tot) - r2_lin).mean(1),
        "log_nonlin": np.log10(np.maximum(1 - r2_lin.min(1), NONLIN_FLOOR)),
    })
    grid = np.meshgrid(seed_col, np.arange(n_dirs), h, indexing="ij")
    extrap = pd.DataFrame({
        "seed": grid[0].ravel(), "phase": "extrapolation", "model": name,
        "direction": grid[1].ravel(), "h": grid[2].ravel(), "output": out_fit.ravel(),
    })
    xs = (s_curve * r).double().numpy()
    cgrid = np.meshgrid(seed_col, xs, indexing="ij")
    curve = pd.DataFrame({
        "seed": cgrid[0].ravel(), "phase": "curve", "model": name, "direction": 0,
        "x": cgrid[1].ravel(),
        "region": np.where(np.abs(cgrid[1].ravel()) <= r, "train", "extrapolation"),
        "output": out_curve.ravel().astype(float), "truth": y_curve.ravel().astype(float),
    })
    return [summary, extrap, curve]


@experiment(
    "extrapolation_fit",
    family="extrapolation",
    params=ExtrapolationParams,
    columns=COLUMNS,
    example={"steps": 20, "width": 8, "n_train": 16, "fit_points": 8, "error_points": 8,
             "curve_points": 5, "reference_mlp": True, "model": "pn"},
)
def extrapolation_fit(
    p: ExtrapolationParams, seeds: Sequence[int], device: torch.device
) -> pd.DataFrame:
    """Train the model (and optionally a reference ReLU MLP) per seed, seeds batched, and
    measure its output beyond the training range (module docstring)."""
    r = p.radius if p.radius is not None else DEFAULT_RADIUS[p.target]
    dim = p.dim or (1 if p.target in TARGETS_1D else QUADRATIC_DIM)
    x_train, dirs, target = _data(p, seeds, r, dim)
    y_train = target(x_train)
    frames: list[pd.DataFrame] = []
    roles = [p.model] + (["reference_mlp"] if p.reference_mlp else [])
    for role in roles:
        model = _build(role, p, seeds, dim).to(device)
        name = "mlp" if role == "reference_mlp" else p.model
        if p.untrained_reference and role == p.model:
            # the very network trained below, read before its first step
            frames += _rows(f"{name}_init", copy.deepcopy(model).cpu(), p, seeds, r, x_train,
                            dirs, target)
        _train(model, x_train.to(device), y_train.to(device), p.steps, p.lr)
        frames += _rows(name, model.cpu(), p, seeds, r, x_train, dirs, target)
    return pd.concat(frames, ignore_index=True).reindex(columns=["seed", *COLUMNS])
