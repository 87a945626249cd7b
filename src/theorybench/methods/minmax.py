"""Min-max games and the first-order methods that compete on them, behind one small interface.

Template (Hsieh, Mertikopoulos, Cevher ICML 2021; the seeds' slides): min_x max_y f(x, y), the
operator V(z) = [∇ₓf(x, y), −∇_y f(x, y)] with z = [x, y], and a (possibly stochastic) oracle
Ṽ(z, ξ) = V(z) + σξ with ξ ~ N(0, I) (additive noise, the model of Pethick et al. ICLR 2023).

**Games** (family ``game``, protocol :class:`GameProtocol`; registered with
``@method("game", name)``; parameters are the dataclass
fields, set from a spec's ``game_params``). Each is a 2-D operator with its Jacobian, its critical
points (found by Newton's method from a grid over its domain unless known in closed form), its
Lipschitz constant L = sup ‖J_V(z)‖₂ and weak-Minty parameter ρ = inf ⟨V(z), z − z*⟩ / ‖V(z)‖²
over its domain (a grid estimate; ρ < 0 means V may point away from the solution z*):

* ``bilinear``          f = xy. V = [y, −x]; the solution 0 is a centre of the flow ż = −V.
* ``almost-bilinear``   f = xy + εφ(u), φ(u) = u²/2 − u⁴/4 (Hsieh et al. 2021, Example; seeds).
                        ``player: max`` puts εφ on y: the origin repels (eigenvalues of −J_V are
                        ε/2 ± i·√(1 − ε²/4)) into an attracting cycle of radius → 2/√3 as ε → 0;
                        ``player: min`` puts it on x: the origin attracts (the control).
* ``forsaken``          f = x(y − c) + φ(x) − φ(y), φ(u) = u²/4 − u⁴/2 + u⁶/6 (Hsieh et al. 2021
                        with c = 0.5, the seeds' Φ(y, x) with the players named x = min, y = max:
                        the only critical point ≈ (0.0460, 0.4772) repels; Pethick et al. ICLR 2022
                        with c = 0.45: it attracts with a tiny basin, ≈ (0.0780, 0.4119)).
* ``global-forsaken``   f = xy + ψ(x) − ψ(y), ψ(u) = 2u⁶/21 − u⁴/3 + u²/3 (Pethick et al. 2022,
                        Appendix C.4): the origin attracts locally, an outer cycle attracts too.
* ``polar``             V = [xg − y, yg + x], g = (a/4)(r² − 1)(4r² − 1), r = ‖z‖ (Pethick et al.
                        2022, Example 3, an operator game): the flow has an attracting cycle at
                        r = 1, a repelling one at r = 1/2 and the solution 0. On the disk r ≤ 1.1:
                        a = 1/3: ρ > −1/(8L) (EG+ and CEG+ theory apply); a = 1: −1/(2L) < ρ <
                        −1/(8L) (CEG+ only); a = 3: ρ < −1/(2L) (no guarantee).

**Algorithms** (family ``minmax-algorithm``, protocol :class:`AlgorithmProtocol`; registered
with ``@method("minmax-algorithm", name)``): a class with

    init(oracle, z0) -> state          (a dict of tensors; empty for memoryless methods)
    step(oracle, z, state, lr, k) -> z_next

where ``z`` holds a batch of trajectories, shape (n, d), ``lr`` = γ_k is the step of the spec's
schedule at iteration ``k``, and the oracle (:class:`Oracle`) gives
``oracle(z)``, a fresh noisy sample Ṽ(z, ξ) (exact when σ = 0), ``oracle(z, xi)`` reusing a
sample ``xi = oracle.draw(z)``, ``oracle.jacobian(z)`` and ``oracle.n_x`` (min-player size).
A step touches no global state; adding a method is adding one class. The methods (their
stochastic variants are the same classes run with σ > 0):

* ``gda``        z⁺ = z − γṼ(z).
* ``alt-gda``    x⁺ = x − γṼₓ(x, y), then y⁺ = y − γṼ_y(x⁺, y).
* ``eg``         z̄ = z − γṼ(z), z⁺ = z − γṼ(z̄) (Korpelevich 1976).
* ``ogda``       z⁺ = z − γ[2Ṽ(z_k) − Ṽ(z_{k−1})] (Popov 1980; Daskalakis et al. 2018).
* ``ppm``        z⁺ = z − γṼ(z⁺) (proximal point; Newton's method from z solves the implicit
                 step to max-abs residual ‖z⁺ − z + γṼ(z⁺)‖_∞ ≤ 1e-8).
* ``rfbs``       z⁺ = z − γṼ(2z_k − z_{k−1}) (reflected forward-backward; Malitsky 2015).
* ``eg+``        z̄ = z − γṼ(z), z⁺ = z − αγṼ(z̄), α = 1/2 (Diakonikolas, Daskalakis, Jordan
                 AISTATS 2021: converges for ρ > −1/(8L) with γ = 1/L).
* ``ceg+``       CEG+ with fixed γ (Pethick et al. ICLR 2022, Algorithm 1 unconstrained, λ = 1):
                 z̄ = z − γṼ(z), H = id − γṼ, z⁺ = z + α(Hz̄ − Hz) with the adaptive
                 α = σ/γ + ⟨z̄ − z, Hz̄ − Hz⟩ / ‖Hz̄ − Hz‖², σ = −0.499γ (valid whenever
                 ρ > −γ/2; converges for ρ > −γ/2, γ ≤ 1/L).
* ``ceg+adaptive``  CEG+ with the curvature-adaptive step (the authors' CurvatureEG+): γ₀ =
                 ν/‖J_V(z)‖₂, then γ ← τγ until γ‖V(z̄) − V(z)‖ ≤ ν‖z̄ − z‖ (ν = 0.99, τ = 1/2);
                 ignores the spec's schedule.
* ``bc-seg+``    bias-corrected stochastic EG+ (Pethick, Fercoq, Latafat, Patrinos, Cevher ICLR
                 2023): z̄_k = z_k − γṼ(z_k, ξ_k) + (1 − α_k)(z̄_{k−1} − z_{k−1} + γṼ(z_{k−1}, ξ_k)),
                 z⁺ = z_k − α_kγṼ(z̄_k, ξ̄_k), α_k = α₀/(1 + k/k_α) (α₀ = 1/2, k_α = 100); γ is the
                 spec's step (keep it constant: the method decays α_k itself).
* ``seg+``       stochastic EG+ with the same decaying α_k and no bias correction (the ablation
                 of ``bc-seg+``; the seeds' "SEG+"): z̄_k = z_k − γṼ(z_k, ξ_k),
                 z⁺ = z_k − α_kγṼ(z̄_k, ξ̄_k), α_k = α₀/(1 + k/k_α).

**Fused kernels.** ``gda``, ``eg``, ``eg+``, ``ogda`` and ``ppm`` (Newton per trajectory, to the
same tolerance) on every game above, exact or noisy oracle, also run as one fused loop per
trajectory (:func:`fused_simulate`): numba-compiled when numba is installed, else the same
arithmetic vectorised over trajectories in numpy (identical results, tested). The operator of
each game is written once, in :func:`_fused_operator`, with the same expressions as its
``operator``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache, cached_property
from typing import Any, ClassVar, Literal, Protocol

import numpy as np
import torch

from theorybench.registry import method, method_family

Tensor = torch.Tensor
State = dict[str, Tensor]
ALGORITHMS = "minmax-algorithm"
GAMES = "game"


class GameProtocol(Protocol):
    """A two-player game by its operator; what the min-max experiment asks of a game."""

    dim: int
    n_x: int
    critical_points: Tensor

    def operator(self, z: Tensor) -> Tensor: ...
    def jacobian(self, z: Tensor) -> Tensor: ...
    def sample_init(self, n: int, generator: torch.Generator) -> Tensor: ...
    def lipschitz(self, points: int = 201) -> float: ...
    def weak_mvi_rho(self, points: int = 201) -> float: ...


class AlgorithmProtocol(Protocol):
    """One batched step of a first-order min-max algorithm (see the module docstring)."""

    def init(self, oracle: Oracle, z: Tensor) -> State: ...
    def step(self, oracle: Oracle, z: Tensor, state: State, lr: float, k: int) -> Tensor: ...


def check_game(game_class: type) -> None:
    """A game built with its defaults: V and J_V of the right shapes, the Jacobian matching
    central differences of V, and the critical points zeros of V."""
    game = game_class()
    z = game.sample_init(7, torch.Generator().manual_seed(0))
    v, jac = game.operator(z), game.jacobian(z)
    assert v.shape == z.shape and jac.shape == (len(z), z.shape[1], z.shape[1])
    h = 1e-6
    for j in range(z.shape[1]):
        dz = torch.zeros_like(z)
        dz[:, j] = h
        numeric = (game.operator(z + dz) - game.operator(z - dz)) / (2 * h)
        assert torch.allclose(numeric, jac[:, :, j], atol=1e-5), f"∂V/∂z_{j} ≠ J_V[:, :, {j}]"
    points = game.critical_points
    assert len(points) > 0 and game.operator(points).norm(dim=1).max() < 1e-8


def check_algorithm(algorithm_class: type) -> None:
    """On the bilinear game with an exact oracle: steps keep the batch's shape and stay finite,
    and the same start gives the same iterates (no hidden state between instances)."""
    game = Bilinear()
    z0 = torch.tensor([[0.5, -0.25], [0.1, 0.3]], dtype=torch.float64)

    def run() -> Tensor:
        oracle = Oracle(game, 0.0, torch.Generator().manual_seed(0))
        algorithm = algorithm_class()
        z, state = z0, algorithm.init(oracle, z0)
        for k in range(3):
            z = algorithm.step(oracle, z, state, 0.1, k)
        return z

    first = run()
    assert first.shape == z0.shape and torch.isfinite(first).all()
    assert torch.equal(first, run())


method_family(GAMES, GameProtocol, "two-player games min_x max_y f(x, y) by their operator V",
              check_game)
method_family(ALGORITHMS, AlgorithmProtocol, "first-order min-max algorithms on an oracle of V",
              check_algorithm)


class Oracle:
    """Ṽ(z, ξ) = V(z) + σξ, ξ ~ N(0, I) (exact when σ = 0): the stochastic oracle every algorithm
    queries. ``generator`` is one generator for the whole batch, or one per block of rows (a
    seed's trajectories): row block b draws its noise from ``generator[b]`` alone, so blocks
    (seeds) are independent of each other."""

    def __init__(self, game: Any, noise: float,
                 generator: torch.Generator | Sequence[torch.Generator]) -> None:
        self.game, self.noise = game, float(noise)
        self.generators = [generator] if isinstance(generator, torch.Generator) else list(generator)

    @property
    def n_x(self) -> int:
        return self.game.n_x

    def draw(self, like: Tensor) -> Tensor | None:
        """A noise sample shaped like ``like`` (None when σ = 0)."""
        if self.noise == 0.0:
            return None
        rows, rest = like.shape[0], tuple(like.shape[1:])
        if rows % len(self.generators):
            raise ValueError(f"{rows} rows do not split into {len(self.generators)} blocks")
        block = rows // len(self.generators)
        return torch.cat([torch.randn((block, *rest), generator=g, dtype=like.dtype)
                          for g in self.generators])

    def __call__(self, z: Tensor, xi: Tensor | None = None) -> Tensor:
        v = self.game.operator(z)
        if self.noise == 0.0:
            return v
        return v + self.noise * (self.draw(z) if xi is None else xi)

    def jacobian(self, z: Tensor) -> Tensor:
        return self.game.jacobian(z)


# --------------------------------------------------------------------------------------- games


class Game:
    """A two-player game on R^d by its operator V(z) = [∇ₓf, −∇_y f] (d = 2, x = z[:, 0])."""

    dim: ClassVar[int] = 2
    n_x: ClassVar[int] = 1
    domain: ClassVar[tuple[Literal["box", "disk"], float]] = ("box", 1.5)
    """Region over which L, ρ and the critical points are computed: a box [−R, R]^d or a disk."""
    init_box: ClassVar[tuple[float, float]] = (-1.5, 1.5)
    """Initial points are uniform in init_box^d unless :meth:`sample_init` is overridden."""

    def operator(self, z: Tensor) -> Tensor:
        """V(z) for a batch z of shape (n, d)."""
        raise NotImplementedError

    def jacobian(self, z: Tensor) -> Tensor:
        """J_V(z), shape (n, d, d)."""
        raise NotImplementedError

    def fused(self) -> tuple[int, float] | None:
        """(code, parameter) of this game in :func:`_fused_operator`, or None (no fused kernel)."""
        return None

    def simulate_fused(self, method_: Method, z0: np.ndarray, lrs: np.ndarray, keep: np.ndarray,
                       *, sigma: float = 0.0, generators: list[torch.Generator] | None = None,
                       compiled: bool = True) -> np.ndarray:
        """:func:`fused_simulate` on this game."""
        return fused_simulate(self, method_, z0, lrs, keep, sigma=sigma, generators=generators,
                              compiled=compiled)

    def sample_init(self, n: int, generator: torch.Generator) -> Tensor:
        lo, hi = self.init_box
        return lo + (hi - lo) * torch.rand(n, self.dim, generator=generator, dtype=torch.float64)

    def domain_grid(self, points: int = 201) -> Tensor:
        """A regular grid over the domain (points per axis), shape (m, d)."""
        kind, radius = self.domain
        axis = torch.linspace(-radius, radius, points, dtype=torch.float64)
        grid = torch.cartesian_prod(*[axis] * self.dim)
        return grid if kind == "box" else grid[grid.norm(dim=1) <= radius]

    @cached_property
    def critical_points(self) -> Tensor:
        """Every zero of V in the domain, shape (c, d), the solution first (the zero of smallest
        norm): Newton's method from a 21^d grid, deduplicated to 1e-6."""
        z = self.domain_grid(21)
        for _ in range(60):
            step = solve_small(self.jacobian(z), self.operator(z))
            z = torch.nan_to_num(z - step, nan=1e6).clamp(-1e6, 1e6)
        z = z[(self.operator(z).norm(dim=1) < 1e-10) & _inside(z, self.domain, 1e-9)]
        if len(z) == 0:
            return z
        _, group = torch.unique(torch.round(z * 1e6), dim=0, return_inverse=True)
        first = torch.stack([torch.nonzero(group == g)[0, 0] for g in range(int(group.max()) + 1)])
        found = z[first]
        return found[found.norm(dim=1).argsort()]

    def lipschitz(self, points: int = 201) -> float:
        """L = max ‖J_V(z)‖₂ over a grid of the domain."""
        return float(spectral_norm(self.jacobian(self.domain_grid(points))).max())

    def weak_mvi_rho(self, points: int = 201) -> float:
        """ρ = min ⟨V(z), z − z*⟩ / ‖V(z)‖² over a grid of the domain (z* the solution)."""
        z = self.domain_grid(points)
        v = self.operator(z)
        sq = (v * v).sum(1)
        keep = sq > 1e-14
        ratio = (v * (z - self.critical_points[0])).sum(1)[keep] / sq[keep]
        return float(ratio.min())


def _inside(z: Tensor, domain: tuple[str, float], tol: float) -> Tensor:
    kind, radius = domain
    size = z.abs().amax(1) if kind == "box" else z.norm(dim=1)
    return size <= radius + tol


def _pack(vx: Tensor, vy: Tensor) -> Tensor:
    return torch.stack((vx, vy), 1)


def _jac(a: Tensor | float, b: Tensor | float, c: Tensor | float, d: Tensor | float) -> Tensor:
    """Batch of 2×2 matrices [[a, b], [c, d]] from (n,) entries (floats broadcast)."""
    n = next(len(t) for t in (a, b, c, d) if isinstance(t, Tensor))
    entries = [t if isinstance(t, Tensor) else torch.full((n,), t, dtype=torch.float64)
               for t in (a, b, c, d)]
    return torch.stack(entries, 1).view(n, 2, 2)


@method(GAMES, "bilinear")
@dataclass(frozen=True)
class Bilinear(Game):
    """f(x, y) = xy: V = [y, −x], J = [[0, 1], [−1, 0]], L = 1, solution 0."""

    init_box: ClassVar[tuple[float, float]] = (-1.0, 1.0)

    def operator(self, z: Tensor) -> Tensor:
        return _pack(z[:, 1], -z[:, 0])

    def jacobian(self, z: Tensor) -> Tensor:
        return _jac(torch.zeros(len(z), dtype=torch.float64), 1.0, -1.0, 0.0)

    def fused(self) -> tuple[int, float]:
        return BILINEAR, 0.0

    @cached_property
    def critical_points(self) -> Tensor:
        return torch.zeros(1, 2, dtype=torch.float64)


@method(GAMES, "almost-bilinear")
@dataclass(frozen=True)
class AlmostBilinear(Game):
    """f(x, y) = xy + εφ(u), φ(u) = u²/2 − u⁴/4, u = y (player max) or u = x (player min)."""

    eps: float = 0.1
    player: Literal["max", "min"] = "max"
    domain: ClassVar[tuple[Literal["box", "disk"], float]] = ("box", 2.0)

    def __post_init__(self) -> None:
        if self.player not in ("max", "min"):
            raise ValueError(f"player must be 'max' or 'min', got {self.player!r}")

    def operator(self, z: Tensor) -> Tensor:
        x, y = z[:, 0], z[:, 1]
        if self.player == "max":
            return _pack(y, -x - self.eps * (y - y**3))
        return _pack(y + self.eps * (x - x**3), -x)

    def jacobian(self, z: Tensor) -> Tensor:
        x, y = z[:, 0], z[:, 1]
        if self.player == "max":
            return _jac(0.0, 1.0, -1.0, -self.eps * (1 - 3 * y**2))
        return _jac(self.eps * (1 - 3 * x**2), 1.0, -1.0, 0.0)

    def fused(self) -> tuple[int, float]:
        return (ALMOST_BILINEAR_MAX if self.player == "max" else ALMOST_BILINEAR_MIN), self.eps

    @cached_property
    def critical_points(self) -> Tensor:
        return torch.zeros(1, 2, dtype=torch.float64)


def _forsaken_dphi(u: Tensor) -> Tensor:
    return u / 2 - 2 * u**3 + u**5


def _forsaken_ddphi(u: Tensor) -> Tensor:
    return 0.5 - 6 * u**2 + 5 * u**4


@method(GAMES, "forsaken")
@dataclass(frozen=True)
class Forsaken(Game):
    """f(x, y) = x(y − c) + φ(x) − φ(y), φ(u) = u²/4 − u⁴/2 + u⁶/6; V = [φ'(x) + y − c,
    −x + φ'(y)]. c = 0.5 (Hsieh et al. 2021) or 0.45 (Pethick et al. 2022)."""

    offset: float = 0.5

    def operator(self, z: Tensor) -> Tensor:
        x, y = z[:, 0], z[:, 1]
        return _pack(_forsaken_dphi(x) + y - self.offset, -x + _forsaken_dphi(y))

    def jacobian(self, z: Tensor) -> Tensor:
        return _jac(_forsaken_ddphi(z[:, 0]), 1.0, -1.0, _forsaken_ddphi(z[:, 1]))

    def fused(self) -> tuple[int, float]:
        return FORSAKEN, self.offset


@method(GAMES, "global-forsaken")
@dataclass(frozen=True)
class GlobalForsaken(Game):
    """f(x, y) = xy + ψ(x) − ψ(y), ψ(u) = 2u⁶/21 − u⁴/3 + u²/3; V = [y + ψ'(x), −x + ψ'(y)]."""

    def operator(self, z: Tensor) -> Tensor:
        x, y = z[:, 0], z[:, 1]
        return _pack(y + _gf_dpsi(x), -x + _gf_dpsi(y))

    def jacobian(self, z: Tensor) -> Tensor:
        return _jac(_gf_ddpsi(z[:, 0]), 1.0, -1.0, _gf_ddpsi(z[:, 1]))

    def fused(self) -> tuple[int, float]:
        return GLOBAL_FORSAKEN, 0.0


def _gf_dpsi(u: Tensor) -> Tensor:
    return 4 * u**5 / 7 - 4 * u**3 / 3 + 2 * u / 3


def _gf_ddpsi(u: Tensor) -> Tensor:
    return 20 * u**4 / 7 - 4 * u**2 + 2 / 3


@method(GAMES, "polar")
@dataclass(frozen=True)
class Polar(Game):
    """V = [xg − y, yg + x], g = (a/4)(r² − 1)(4r² − 1); initial points uniform in the annulus
    r_in ≤ r ≤ r_out (outside the repelling cycle r = 1/2 by default)."""

    a: float = 1.0
    r_in: float = 0.55
    r_out: float = 1.0
    domain: ClassVar[tuple[Literal["box", "disk"], float]] = ("disk", 1.1)

    def operator(self, z: Tensor) -> Tensor:
        x, y = z[:, 0], z[:, 1]
        r2 = x * x + y * y
        g = self.a / 4 * (r2 - 1) * (4 * r2 - 1)
        return _pack(x * g - y, y * g + x)

    def jacobian(self, z: Tensor) -> Tensor:
        x, y = z[:, 0], z[:, 1]
        r2 = x * x + y * y
        g = self.a / 4 * (r2 - 1) * (4 * r2 - 1)
        dg = self.a / 4 * (8 * r2 - 5)  # dg / d(r²)
        return _jac(g + 2 * x * x * dg, 2 * x * y * dg - 1, 2 * x * y * dg + 1, g + 2 * y * y * dg)

    def fused(self) -> tuple[int, float]:
        return POLAR, self.a

    def sample_init(self, n: int, generator: torch.Generator) -> Tensor:
        u = torch.rand(n, 2, generator=generator, dtype=torch.float64)
        r = torch.sqrt(self.r_in**2 + (self.r_out**2 - self.r_in**2) * u[:, 0])
        theta = 2 * math.pi * u[:, 1]
        return torch.stack((r * torch.cos(theta), r * torch.sin(theta)), 1)

    @cached_property
    def critical_points(self) -> Tensor:
        return torch.zeros(1, 2, dtype=torch.float64)


def solve_small(mats: Tensor, rhs: Tensor) -> Tensor:
    """x with A x = b for a batch of square A (n, d, d) and b (n, d); Cramer's rule for 2×2."""
    if mats.shape[-1] == 2:
        a, b, c, d = mats.reshape(-1, 4).unbind(1)
        r0, r1 = rhs.unbind(1)
        return torch.stack((d * r0 - b * r1, a * r1 - c * r0), 1) / (a * d - b * c).unsqueeze(1)
    return torch.linalg.solve_ex(mats, rhs)[0]


def spectral_norm(mats: Tensor) -> Tensor:
    """‖A‖₂ for a batch of square matrices (closed form for 2×2; NaN rows give NaN)."""
    if mats.shape[-1] == 2:
        a, b, c, d = mats.reshape(*mats.shape[:-2], 4).unbind(-1)
        fro2 = a * a + b * b + c * c + d * d
        det = a * d - b * c
        return torch.sqrt((fro2 + torch.sqrt((fro2 * fro2 - 4 * det * det).clamp(min=0))) / 2)
    return torch.linalg.matrix_norm(torch.nan_to_num(mats), ord=2)


# ------------------------------------------------------------------------------------- methods

class Method:
    """One batched step of a min-max method; see the module docstring for the contract."""

    adaptive_step: ClassVar[bool] = False
    """True when the method picks its own step and ignores the schedule's ``lr``."""
    fused: ClassVar[tuple[int, float] | None] = None
    """(code, α) of this method in :func:`_fused_run` for a deterministic oracle, or None."""

    def init(self, oracle: Oracle, z: Tensor) -> State:
        return {}

    def step(self, oracle: Oracle, z: Tensor, state: State, lr: float, k: int) -> Tensor:
        raise NotImplementedError


@method(ALGORITHMS, "gda")
class GDA(Method):
    fused: ClassVar[tuple[int, float]] = (0, 1.0)

    def step(self, oracle: Oracle, z: Tensor, state: State, lr: float, k: int) -> Tensor:
        return z - lr * oracle(z)


@method(ALGORITHMS, "alt-gda")
class AltGDA(Method):
    def step(self, oracle: Oracle, z: Tensor, state: State, lr: float, k: int) -> Tensor:
        n = oracle.n_x
        x = z[:, :n] - lr * oracle(z)[:, :n]
        half = torch.cat((x, z[:, n:]), 1)
        return torch.cat((x, z[:, n:] - lr * oracle(half)[:, n:]), 1)


@method(ALGORITHMS, "eg")
class EG(Method):
    fused: ClassVar[tuple[int, float]] = (1, 1.0)

    def step(self, oracle: Oracle, z: Tensor, state: State, lr: float, k: int) -> Tensor:
        return z - lr * oracle(z - lr * oracle(z))


@method(ALGORITHMS, "ogda")
class OGDA(Method):
    fused: ClassVar[tuple[int, float]] = (2, 1.0)

    def init(self, oracle: Oracle, z: Tensor) -> State:
        return {"v_prev": oracle(z)}

    def step(self, oracle: Oracle, z: Tensor, state: State, lr: float, k: int) -> Tensor:
        v = oracle(z)
        z_next = z - lr * (2 * v - state["v_prev"])
        state["v_prev"] = v
        return z_next


@method(ALGORITHMS, "ppm")
class PPM(Method):
    """Implicit step w = z − γṼ(w, ξ) by Newton's method on G(w) = w − z + γṼ(w, ξ)."""

    fused: ClassVar[tuple[int, float]] = (3, 1.0)

    tol: ClassVar[float] = 1e-8
    max_newton: ClassVar[int] = 30

    def step(self, oracle: Oracle, z: Tensor, state: State, lr: float, k: int) -> Tensor:
        xi = oracle.draw(z)
        eye = torch.eye(z.shape[1], dtype=z.dtype)
        w, residual = z, lr * oracle(z, xi)
        for _ in range(self.max_newton):
            w = w - solve_small(eye + lr * oracle.jacobian(w), residual)
            residual = w - z + lr * oracle(w, xi)
            if float(torch.nan_to_num(residual.abs()).max()) <= self.tol:
                break
        return w


@method(ALGORITHMS, "rfbs")
class RFBS(Method):
    def init(self, oracle: Oracle, z: Tensor) -> State:
        return {"z_prev": z}

    def step(self, oracle: Oracle, z: Tensor, state: State, lr: float, k: int) -> Tensor:
        z_next = z - lr * oracle(2 * z - state["z_prev"])
        state["z_prev"] = z
        return z_next


@method(ALGORITHMS, "eg+")
class EGPlus(Method):
    alpha: ClassVar[float] = 0.5
    fused: ClassVar[tuple[int, float]] = (1, 0.5)

    def step(self, oracle: Oracle, z: Tensor, state: State, lr: float, k: int) -> Tensor:
        return z - self.alpha * lr * oracle(z - lr * oracle(z))


def _ceg_update(z: Tensor, zbar: Tensor, v: Tensor, vbar: Tensor, gamma: Tensor | float,
                sigma_ratio: float) -> Tensor:
    """z + α(Hz̄ − Hz), H = id − γV, α = σ/γ + ⟨z̄ − z, Hz̄ − Hz⟩ / ‖Hz̄ − Hz‖² (0 when Hz̄ = Hz)."""
    d = (zbar - gamma * vbar) - (z - gamma * v)
    sq = (d * d).sum(1, keepdim=True)
    alpha = sigma_ratio + ((zbar - z) * d).sum(1, keepdim=True) / sq.clamp(min=1e-300)
    return z + torch.where(sq > 0, alpha, torch.zeros_like(alpha)) * d


@method(ALGORITHMS, "ceg+")
class CEGPlus(Method):
    sigma_ratio: ClassVar[float] = -0.499

    def step(self, oracle: Oracle, z: Tensor, state: State, lr: float, k: int) -> Tensor:
        v = oracle(z)
        zbar = z - lr * v
        return _ceg_update(z, zbar, v, oracle(zbar), lr, self.sigma_ratio)


@method(ALGORITHMS, "ceg+adaptive")
class CEGPlusAdaptive(Method):
    adaptive_step: ClassVar[bool] = True
    sigma_ratio: ClassVar[float] = -0.499
    nu: ClassVar[float] = 0.99
    tau: ClassVar[float] = 0.5
    max_backtracks: ClassVar[int] = 30

    def step(self, oracle: Oracle, z: Tensor, state: State, lr: float, k: int) -> Tensor:
        xi = oracle.draw(z)
        v = oracle(z, xi)
        gamma, zbar, vbar = self.extrapolate(oracle, z, v, xi)
        return _ceg_update(z, zbar, v, vbar, gamma, self.sigma_ratio)

    def extrapolate(self, oracle: Oracle, z: Tensor, v: Tensor,
                    xi: Tensor | None) -> tuple[Tensor, Tensor, Tensor]:
        """Per-row γ (n, 1) from γ₀ = ν/‖J_V(z)‖₂ halved until γ‖V(z̄) − V(z)‖ ≤ ν‖z̄ − z‖,
        with z̄ = z − γV(z) and V(z̄)."""
        gamma = (self.nu / spectral_norm(oracle.jacobian(z))).unsqueeze(1)
        for i in range(self.max_backtracks + 1):
            zbar = z - gamma * v
            vbar = oracle(zbar, xi)
            too_long = gamma * (vbar - v).norm(dim=1, keepdim=True) > (
                self.nu * (zbar - z).norm(dim=1, keepdim=True))
            if i == self.max_backtracks or not bool(too_long.any()):
                break
            gamma = torch.where(too_long, self.tau * gamma, gamma)
        return gamma, zbar, vbar


@method(ALGORITHMS, "bc-seg+")
class BCSEGPlus(Method):
    alpha0: ClassVar[float] = 0.5
    alpha_offset: ClassVar[float] = 100.0

    def init(self, oracle: Oracle, z: Tensor) -> State:
        return {"z_prev": z, "zbar_prev": z}

    def step(self, oracle: Oracle, z: Tensor, state: State, lr: float, k: int) -> Tensor:
        alpha = self.alpha0 / (1 + k / self.alpha_offset)
        xi = oracle.draw(z)
        correction = state["zbar_prev"] - state["z_prev"] + lr * oracle(state["z_prev"], xi)
        zbar = z - lr * oracle(z, xi) + (1 - alpha) * correction
        state["z_prev"], state["zbar_prev"] = z, zbar
        return z - alpha * lr * oracle(zbar)



@method(ALGORITHMS, "seg+")
class SEGPlus(Method):
    """BC-SEG+ without the bias correction: the ablation that isolates the correction."""

    alpha0: ClassVar[float] = BCSEGPlus.alpha0
    alpha_offset: ClassVar[float] = BCSEGPlus.alpha_offset

    def step(self, oracle: Oracle, z: Tensor, state: State, lr: float, k: int) -> Tensor:
        alpha = self.alpha0 / (1 + k / self.alpha_offset)
        zbar = z - lr * oracle(z)
        return z - alpha * lr * oracle(zbar)


# ------------------------------------------------------------------------------- fused kernels

BILINEAR, ALMOST_BILINEAR_MAX, ALMOST_BILINEAR_MIN, FORSAKEN, GLOBAL_FORSAKEN, POLAR = range(6)


def _fused_operator(game: int, c: float, x: Any, y: Any) -> tuple[Any, Any]:
    """V(x, y) of game ``game`` with parameter ``c`` (ε, offset or a), on floats (numba) or numpy
    arrays: powers are written as products so both paths round identically."""
    if game == BILINEAR:
        return y, -x
    if game == ALMOST_BILINEAR_MAX:
        return y, -x - c * (y - y * y * y)
    if game == ALMOST_BILINEAR_MIN:
        return y + c * (x - x * x * x), -x
    if game == FORSAKEN:
        x2, y2 = x * x, y * y
        return x / 2 - 2 * x * x2 + x * x2 * x2 + y - c, -x + (y / 2 - 2 * y * y2 + y * y2 * y2)
    if game == GLOBAL_FORSAKEN:
        x2, y2 = x * x, y * y
        return (y + (4 * x * x2 * x2 / 7 - 4 * x * x2 / 3 + 2 * x / 3),
                -x + (4 * y * y2 * y2 / 7 - 4 * y * y2 / 3 + 2 * y / 3))
    r2 = x * x + y * y
    g = c / 4 * (r2 - 1) * (4 * r2 - 1)
    return x * g - y, y * g + x


def _fused_jacobian(game: int, c: float, x: Any, y: Any) -> tuple[Any, Any, Any, Any]:
    """J_V(x, y) = [[a, b], [c, d]] of game ``game`` (for the proximal point method's Newton
    steps), floats or arrays; the same expressions as each game's ``jacobian``."""
    zero = 0.0 * x
    if game == BILINEAR:
        return zero, zero + 1.0, zero - 1.0, zero
    if game == ALMOST_BILINEAR_MAX:
        return zero, zero + 1.0, zero - 1.0, -c * (1 - 3 * (y * y))
    if game == ALMOST_BILINEAR_MIN:
        return c * (1 - 3 * (x * x)), zero + 1.0, zero - 1.0, zero
    if game == FORSAKEN:
        x2, y2 = x * x, y * y
        return 0.5 - 6 * x2 + 5 * (x2 * x2), zero + 1.0, zero - 1.0, 0.5 - 6 * y2 + 5 * (y2 * y2)
    if game == GLOBAL_FORSAKEN:
        x2, y2 = x * x, y * y
        return (20 * (x2 * x2) / 7 - 4 * x2 + 2 / 3, zero + 1.0, zero - 1.0,
                20 * (y2 * y2) / 7 - 4 * y2 + 2 / 3)
    r2 = x * x + y * y
    g = c / 4 * (r2 - 1) * (4 * r2 - 1)
    dg = c / 4 * (8 * r2 - 5)
    return g + 2 * x * x * dg, 2 * x * y * dg - 1, 2 * x * y * dg + 1, g + 2 * y * y * dg


def _newton_delta(lr: float, j00: Any, j01: Any, j10: Any, j11: Any, rx: Any,
                  ry: Any) -> tuple[Any, Any]:
    """δ with (I + γJ) δ = r for J = [[j00, j01], [j10, j11]] (Cramer's rule, as
    :func:`solve_small`)."""
    a, b, cc, d = 1 + lr * j00, lr * j01, lr * j10, 1 + lr * j11
    det = a * d - b * cc
    return (d * rx - b * ry) / det, (a * ry - cc * rx) / det


def _fused_chunk_numpy(game: int, c: float, algo: int, alpha: float, sigma: float,
                       z: np.ndarray, pv: np.ndarray, lrs: np.ndarray, xi: np.ndarray, k0: int,
                       keep: np.ndarray, j: int, out: np.ndarray, max_newton: int,
                       tol: float) -> int:
    """Steps k0 … k0 + len(lrs) − 1 of the fused loop, vectorised over trajectories (the
    fallback; the same arithmetic as :func:`_fused_chunk_scalar`). ``z`` and ``pv`` (OGDA's
    previous Ṽ) are updated in place; returns the next tail slot."""
    x, y, px, py = z[:, 0].copy(), z[:, 1].copy(), pv[:, 0].copy(), pv[:, 1].copy()
    for s in range(len(lrs)):
        lr = lrs[s]
        vx, vy = _fused_operator(game, c, x, y)
        if sigma > 0:
            vx, vy = vx + sigma * xi[s, 0, :, 0], vy + sigma * xi[s, 0, :, 1]
        if algo == 0:
            x, y = x - lr * vx, y - lr * vy
        elif algo == 1:
            wx, wy = _fused_operator(game, c, x - lr * vx, y - lr * vy)
            if sigma > 0:
                wx, wy = wx + sigma * xi[s, 1, :, 0], wy + sigma * xi[s, 1, :, 1]
            x, y = x - alpha * lr * wx, y - alpha * lr * wy
        elif algo == 2:
            x, y = x - lr * (2 * vx - px), y - lr * (2 * vy - py)
            px, py = vx, vy
        else:
            wx, wy, rx, ry = x, y, lr * vx, lr * vy
            active = np.ones(len(x), dtype=bool)
            for _ in range(max_newton):
                j00, j01, j10, j11 = _fused_jacobian(game, c, wx, wy)
                dx, dy = _newton_delta(lr, j00, j01, j10, j11, rx, ry)
                wx, wy = np.where(active, wx - dx, wx), np.where(active, wy - dy, wy)
                ux, uy = _fused_operator(game, c, wx, wy)
                if sigma > 0:
                    ux, uy = ux + sigma * xi[s, 0, :, 0], uy + sigma * xi[s, 0, :, 1]
                rx = np.where(active, wx - x + lr * ux, rx)
                ry = np.where(active, wy - y + lr * uy, ry)
                active &= ~(np.maximum(np.abs(rx), np.abs(ry)) <= tol)
                if not active.any():
                    break
            x, y = wx, wy
        if j < len(keep) and keep[j] == k0 + s + 1:
            out[:, j, 0], out[:, j, 1] = x, y
            j += 1
    z[:, 0], z[:, 1], pv[:, 0], pv[:, 1] = x, y, px, py
    return j


def _fused_chunk_scalar(game: int, c: float, algo: int, noisy: bool, alpha: float,
                        sigma: float, z: np.ndarray, pv: np.ndarray, lrs: np.ndarray,
                        xi: np.ndarray, k0: int, keep: np.ndarray, j0: int, out: np.ndarray,
                        max_newton: int, tol: float) -> int:
    """The same steps as explicit loops (compiled by numba): steps outside, trajectories inside
    over contiguous x, y arrays, so independent trajectories fill the vector units; PPM stops
    Newton per trajectory, exactly where the vectorised version freezes that row."""
    n = z.shape[0]
    x, y = z[:, 0].copy(), z[:, 1].copy()
    px, py = pv[:, 0].copy(), pv[:, 1].copy()
    j = j0
    for s in range(len(lrs)):
        lr = lrs[s]
        for i in range(n):
            xi_, yi = x[i], y[i]
            vx, vy = _operator_jit(game, c, xi_, yi)
            if noisy:
                vx, vy = vx + sigma * xi[s, 0, i, 0], vy + sigma * xi[s, 0, i, 1]
            if algo == 0:
                x[i], y[i] = xi_ - lr * vx, yi - lr * vy
            elif algo == 1:
                wx, wy = _operator_jit(game, c, xi_ - lr * vx, yi - lr * vy)
                if noisy:
                    wx, wy = wx + sigma * xi[s, 1, i, 0], wy + sigma * xi[s, 1, i, 1]
                x[i], y[i] = xi_ - alpha * lr * wx, yi - alpha * lr * wy
            elif algo == 2:
                x[i], y[i] = xi_ - lr * (2 * vx - px[i]), yi - lr * (2 * vy - py[i])
                px[i], py[i] = vx, vy
            else:
                wx, wy, rx, ry = xi_, yi, lr * vx, lr * vy
                for _ in range(max_newton):
                    j00, j01, j10, j11 = _jacobian_jit(game, c, wx, wy)
                    dx, dy = _newton_jit(lr, j00, j01, j10, j11, rx, ry)
                    wx, wy = wx - dx, wy - dy
                    ux, uy = _operator_jit(game, c, wx, wy)
                    if noisy:
                        ux, uy = ux + sigma * xi[s, 0, i, 0], uy + sigma * xi[s, 0, i, 1]
                    rx, ry = wx - xi_ + lr * ux, wy - yi + lr * uy
                    if max(abs(rx), abs(ry)) <= tol:
                        break
                x[i], y[i] = wx, wy
        if j < len(keep) and keep[j] == k0 + s + 1:
            for i in range(n):
                out[i, j, 0], out[i, j, 1] = x[i], y[i]
            j += 1
    for i in range(n):
        z[i, 0], z[i, 1], pv[i, 0], pv[i, 1] = x[i], y[i], px[i], py[i]
    return j


_operator_jit: Any = None
_jacobian_jit: Any = None
_newton_jit: Any = None
_chunk_inline: Any = None
"""The compiled scalar helpers the fused loop calls; :func:`_numba` sets them."""


@cache
def _numba() -> Any:
    """numba, with the scalar helpers of the fused loop compiled inline (on first use: importing
    numba takes a second, and most runs never need it), or None when it is not installed (the
    pure-numpy path gives the same numbers, more slowly)."""
    try:
        import numba
    except ImportError:
        return None
    jit = numba.njit(inline="always", cache=True)
    globals().update(_operator_jit=jit(_fused_operator), _jacobian_jit=jit(_fused_jacobian),
                     _newton_jit=jit(_newton_delta), _chunk_inline=jit(_fused_chunk_scalar))
    return numba


_KERNELS: dict[tuple[int, int, bool], Callable[..., int]] = {}


def _compiled_chunk(game: int, algo: int, noisy: bool) -> Callable[..., int] | None:
    """The numba loop specialised to one game, one method and noise on/off (compile-time
    constants, so the branches on them fold away and the inner loop vectorises; numba's disk
    cache keys each specialisation by these constants), or None without numba."""
    numba = _numba()
    if numba is None:
        return None
    if (game, algo, noisy) not in _KERNELS:
        def kernel(c: float, alpha: float, sigma: float, z: np.ndarray, pv: np.ndarray,
                   lrs: np.ndarray, xi: np.ndarray, k0: int, keep: np.ndarray, j0: int,
                   out: np.ndarray, max_newton: int, tol: float) -> int:
            return _chunk_inline(game, c, algo, noisy, alpha, sigma, z, pv, lrs, xi, k0, keep,
                                 j0, out, max_newton, tol)
        _KERNELS[game, algo, noisy] = numba.njit(cache=True)(kernel)
    return _KERNELS[game, algo, noisy]


CHUNK = 1024
"""Steps per call of the fused loop: the oracle noise of a chunk is drawn before it runs."""


def fused_simulate(game: Game, method_: Method, z0: np.ndarray, lrs: np.ndarray,
                   keep: np.ndarray, *, sigma: float = 0.0,
                   generators: list[torch.Generator] | None = None,
                   compiled: bool = True) -> np.ndarray:
    """Tail iterates (n, len(keep), 2) of ``method_`` on ``game`` with steps ``lrs`` (γ_k for
    k < steps) from ``z0`` (n, 2), at the iterate indices ``keep`` (sorted, in [0, steps]).

    With σ > 0 the oracle is Ṽ = V + σξ; row block b (n / len(generators) rows: one seed) draws
    its ξ from ``generators[b]`` alone: one (2,) sample for OGDA's initial Ṽ(z₀), then per chunk
    of :data:`CHUNK` steps a (chunk, draws, block, 2) tensor (draws = 2 for EG/EG+, else 1; PPM
    reuses its draw inside the implicit step). ``compiled=False`` forces the numpy path."""
    code, algo = game.fused(), method_.fused
    if code is None or algo is None:
        raise ValueError(f"no fused kernel for {type(method_).__name__} on {type(game).__name__}")
    n, steps, draws = len(z0), len(lrs), 2 if algo[0] == 1 else 1
    gens = generators or []
    if sigma > 0 and (not gens or n % len(gens)):
        raise ValueError("a noisy fused run needs one generator per equal block of rows")

    def noise(*shape: int) -> np.ndarray:
        block = n // len(gens)
        parts = [torch.randn((*shape[:-2], block, shape[-1]), generator=g, dtype=torch.float64)
                 for g in gens]
        return torch.cat(parts, dim=len(shape) - 2).numpy()

    z = np.array(z0, dtype=np.float64, order="C")
    pvx, pvy = _fused_operator(code[0], float(code[1]), z[:, 0], z[:, 1])
    pv = np.stack((pvx, pvy), 1)
    if sigma > 0:
        pv = pv + sigma * noise(n, 2)
    keep = np.asarray(keep, np.int64)
    lrs = np.asarray(lrs, np.float64)
    out = np.empty((n, len(keep), 2))
    j = 0
    if len(keep) and keep[0] == 0:
        out[:, 0] = z
        j = 1
    kernel = _compiled_chunk(code[0], algo[0], sigma > 0) if compiled else None
    for k0 in range(0, steps, CHUNK):
        k1 = min(steps, k0 + CHUNK)
        xi = noise(k1 - k0, draws, n, 2) if sigma > 0 else np.zeros((0, 0, 0, 0))
        rest = (float(algo[1]), float(sigma), z, pv, lrs[k0:k1], xi, k0, keep, j, out,
                PPM.max_newton, PPM.tol)
        if kernel is not None:
            j = kernel(float(code[1]), *rest)
        else:
            j = _fused_chunk_numpy(code[0], float(code[1]), algo[0], *rest)
    return out
