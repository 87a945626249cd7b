"""Where min-max algorithms end up: solutions, spurious cycles, divergence.

Claims:

* Spurious attractors (Hsieh, Mertikopoulos, Cevher, "The limits of min-max optimization
  algorithms: convergence to spurious non-critical sets", ICML 2021): Robbins–Monro schemes
  z_{k+1} = z_k − γ_k Ṽ(z_k, ξ_k) (GDA, stochastic GDA, EG, OGDA, PPM) with bounded trajectories
  converge to internally chain-transitive sets, which for min-max problems include attractors that
  contain no critical point; on the "almost bilinear" and "forsaken" games they are reached from
  most initial points.
* Bilinear control (the seeds' trajectory figure): on min_x max_y xy, GDA spirals out while EG,
  OGDA and PPM converge.
* Weak Minty methods (Diakonikolas, Daskalakis, Jordan AISTATS 2021; Pethick, Latafat, Patrinos,
  Fercoq, Cevher ICLR 2022; Pethick, Fercoq, Latafat, Patrinos, Cevher ICLR 2023): EG+ converges
  when ⟨V(z), z − z*⟩ ≥ ρ‖V(z)‖² with ρ > −1/(8L); CEG+ (and the bias-corrected SEG+) when
  ρ > −γ/2 with γ ≤ 1/L, including problems where plain EG and GDA cycle.

Measured quantity (kind ``minmax_dynamics``): ``trajectories`` initial points per seed, drawn
from the game's initial region (or ``init_box``), run together (the fused numba/numpy kernel of
``theorybench.methods.minmax`` for GDA, EG, EG+, OGDA and PPM, else one batched tensor) for
``steps``
iterations of the method with the step schedule γ_k = step · (1 + k/offset)^(−decay). The tail is
the last ``tail`` fraction of the ODE time t_k = Σ_{j<k} γ_j (the last ``tail`` of the iterates for
a constant step), sampled at ``tail_samples`` evenly spaced iterates ending at the last one. Each
trajectory is classified from its tail by :func:`classify_tails`, never by ergodic averages:

* ``diverged``   a non-finite iterate or ‖z‖ > ``escape_radius`` in the tail;
* ``converged``  not diverged, the last iterate within ``converge_dist`` of a critical point;
* ``trapped``    on a spurious limit set (the event of Hsieh et al.): not diverged nor
                 converged, the whole tail stays away from every critical point (min_tail
                 dist(z, crit) ≥ ``trap_dist``, min_tail ‖V(z)‖ ≥ ``trap_grad``), winds at least
                 ``min_turns`` times around its centroid c, is a ring (min ‖z − c‖ ≥ 0.3 × its
                 mean) and has stopped drifting: the mean of ‖z − c‖ over the tail's last turn and
                 over its first turn differ by at most ``drift_tol`` (relative). A spiral still
                 expanding towards the cycle, or contracting towards a point, is not trapped;
* ``periodic``   not diverged nor converged, the tail winds at least once around its centroid,
                 is a ring (its distance to the centroid never drops below 0.3 × its mean) and
                 closes up: the iterate one full turn before the last lies within ``period_tol``
                 · diam(tail) of it (a limit cycle).

Each seed has its own streams (``theorybench.streams``): initial points from ``minmax/init``,
oracle noise for that seed's trajectories from ``minmax/noise``, so a seed's rows do not depend on
which other seeds share its cell. One row per trajectory with these 0/1 columns,
``tail_dist`` (min over the tail of the distance to the nearest critical point),
``tail_grad_norm`` (min over the tail of ‖V‖), ``final_dist``, ``revolutions`` (turns of the tail
around its centroid; ≈ 0.5 for a short arc), ``radius`` (mean ‖z − c‖ over the tail's last turn:
the radius of the limit set reached, ≈ 1.15 for the almost-bilinear cycle), ``radial_drift``
((last-turn − first-turn mean radius) / the larger of the two, 0 for a tail sitting on a point:
> 0 expanding, < 0 contracting) and
``step_rule`` (the schedule, or ``adaptive`` for methods that choose their own step), so a sweep
over ``algorithm`` gives the ranking per game:
the fraction reaching a solution and the fraction trapped. The runner adds swept parameters
(``algorithm``, ``noise``, ...) as columns, so the kind never returns a column named after one.

Games and methods live in ``theorybench.methods.minmax`` (families ``minmax-games`` and ``minmax``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from theorybench.methods.minmax import ALGORITHMS, GAMES, Oracle
from theorybench.registry import experiment, get_method, methods
from theorybench.streams import stream, streams

Tensor = torch.Tensor
ANNULUS = 0.3
"""A periodic tail must avoid its own centroid: min radius ≥ ANNULUS × mean radius (a ring, not
noise around a point)."""


class Schedule(BaseModel):
    """γ_k = step · (1 + k/offset)^(−decay); decay = 0 is a constant step."""

    model_config = ConfigDict(extra="forbid")

    step: float = Field(0.01, gt=0, description="γ₀")
    decay: float = Field(0.0, ge=0, description="exponent p of the vanishing schedule")
    offset: float = Field(10.0, gt=0, description="k₀ in (1 + k/k₀)^(−p)")

    def __call__(self, k: int) -> float:
        return self.step * (1 + k / self.offset) ** (-self.decay)

    def label(self) -> str:
        if self.decay == 0:
            return f"{self.step:g}"
        return f"{self.step:g}(1+k/{self.offset:g})^-{self.decay:g}"


class MinMaxParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    game: str = Field("almost-bilinear", description="a registered game (family `game`)")
    game_params: dict[str, float | str] = Field(
        default_factory=dict, description="the game's parameters (e.g. eps, player, offset, a)")
    algorithm: str = Field("gda", description="a registered min-max algorithm")
    schedule: Schedule = Field(default_factory=Schedule)
    noise: float = Field(0.0, ge=0, description="σ of the additive Gaussian oracle noise")
    trajectories: int = Field(256, ge=1, description="initial points per seed")
    steps: int = Field(4000, ge=2)
    init_box: list[list[float]] | None = Field(
        None, description="[[lo, hi] per coordinate]: uniform initial points (else the game's)")
    tail: float = Field(0.2, gt=0, lt=1, description="fraction of the ODE time classified")
    tail_samples: int = Field(256, ge=8)
    converge_dist: float = Field(1e-2, gt=0)
    trap_dist: float = Field(0.1, gt=0)
    trap_grad: float = Field(0.05, gt=0)
    min_turns: float = Field(2.0, gt=0, description="turns a trapped tail winds around its centre")
    drift_tol: float = Field(0.05, gt=0, description="max relative radial drift of a trapped tail")
    escape_radius: float = Field(1e3, gt=0)
    period_tol: float = Field(0.1, gt=0)

    @field_validator("game")
    @classmethod
    def _known_game(cls, name: str) -> str:
        if name not in methods(GAMES):
            raise ValueError(f"unknown game {name!r}; known: {sorted(methods(GAMES))}")
        return name

    @field_validator("algorithm")
    @classmethod
    def _known_algorithm(cls, name: str) -> str:
        if name not in methods(ALGORITHMS):
            raise ValueError(f"unknown algorithm {name!r}; known: {sorted(methods(ALGORITHMS))}")
        return name

    @model_validator(mode="after")
    def _game_accepts_params(self) -> MinMaxParams:
        try:
            get_method(GAMES, self.game)(**self.game_params)
        except TypeError as exc:
            raise ValueError(f"game {self.game!r}: {exc}") from None
        return self


def tail_start(schedule: Schedule, steps: int, tail: float) -> int:
    """First iterate k whose ODE time t_k = Σ_{j<k} γ_j is at least (1 − tail) · t_steps."""
    times = np.concatenate(([0.0], np.cumsum([schedule(k) for k in range(steps)])))
    return int(np.searchsorted(times, (1 - tail) * times[-1]))


def tail_indices(start: int, steps: int, samples: int) -> np.ndarray:
    """Sorted distinct iterate indices of the tail: ``samples`` evenly spaced in [start, steps]."""
    return np.unique(np.linspace(start, steps, samples).round().astype(np.int64))


def simulate(method: Any, oracle: Any, z0: Tensor, schedule: Schedule, steps: int,
             start: int, samples: int) -> Tensor:
    """Run ``steps`` iterations from the batch ``z0`` (n, d) and return the tail: the iterates at
    ``samples`` evenly spaced indices from ``start`` to ``steps`` (n, samples, d)."""
    keep = set(tail_indices(start, steps, samples).tolist())
    z, state = z0, method.init(oracle, z0)
    tail = [z] if 0 in keep else []
    for k in range(steps):
        z = method.step(oracle, z, state, schedule(k), k)
        if k + 1 in keep:
            tail.append(z)
    return torch.stack(tail, 1)


def run_tail(game: Any, method: Any, oracle: Oracle, z0: Tensor, schedule: Schedule, steps: int,
             start: int, samples: int) -> Tensor:
    """:func:`simulate`, through the fused kernel of ``theorybench.methods.minmax`` when the game
    and method have one (the same iterates to rounding with an exact oracle, tested; with noise the
    kernel draws each seed's ξ from that seed's generator in its own order)."""
    if game.fused() is not None and method.fused is not None:
        lrs = np.array([schedule(k) for k in range(steps)])
        keep = tail_indices(start, steps, samples)
        return torch.from_numpy(game.simulate_fused(method, z0.numpy(), lrs, keep,
                                                    sigma=oracle.noise,
                                                    generators=oracle.generators))
    return simulate(method, oracle, z0, schedule, steps, start, samples)


def classify_tails(tail: Tensor, grad_norm: Tensor, critical: Tensor, *, converge_dist: float,
                   trap_dist: float, trap_grad: float, escape_radius: float,
                   period_tol: float, min_turns: float = 2.0,
                   drift_tol: float = 0.05) -> dict[str, Tensor]:
    """Classify each trajectory from its tail iterates ``tail`` (n, m, d) with ‖V‖ at them
    ``grad_norm`` (n, m) and the game's critical points ``critical`` (c, d); the module docstring
    defines the events. The winding and radius tests use the first two coordinates."""
    n, m, _ = tail.shape
    norms = tail.norm(dim=2)
    diverged = ~torch.isfinite(norms).all(1) | (torch.nan_to_num(norms, nan=math.inf).amax(1)
                                                > escape_radius)
    if len(critical):
        dist = (tail.unsqueeze(2) - critical).norm(dim=3).amin(2)
    else:
        dist = torch.full((n, m), math.inf, dtype=tail.dtype)
    final_dist = dist[:, -1]
    converged = ~diverged & (final_dist <= converge_dist)

    rel = tail[..., :2] - tail[..., :2].mean(1, keepdim=True)
    angle = torch.atan2(rel[..., 1], rel[..., 0])
    turn = torch.remainder(angle.diff(dim=1) + math.pi, 2 * math.pi) - math.pi
    wound = torch.cat((torch.zeros(n, 1, dtype=tail.dtype), turn.cumsum(1)), 1)
    back = (wound[:, -1:] - wound).abs()
    revolutions = back[:, 0] / (2 * math.pi)
    full_turn = back >= 2 * math.pi
    one_turn_back = (full_turn * torch.arange(m)).argmax(1)
    gap = (tail[torch.arange(n), one_turn_back] - tail[:, -1]).norm(dim=1)
    diam = (tail.amax(1) - tail.amin(1)).norm(dim=1)
    radius = rel.norm(dim=2)
    ring = radius.amin(1) >= ANNULUS * radius.mean(1)
    last_turn = (back <= 2 * math.pi).to(tail.dtype)
    first_turn = ((wound - wound[:, :1]).abs() <= 2 * math.pi).to(tail.dtype)
    r_last = (radius * last_turn).sum(1) / last_turn.sum(1)
    r_first = (radius * first_turn).sum(1) / first_turn.sum(1)
    scale = torch.maximum(r_last, r_first)
    drift = torch.where(scale > 0, (r_last - r_first) / scale.clamp_min(1e-300),
                        torch.zeros_like(scale))
    periodic = (~diverged & ~converged & full_turn.any(1) & ring & (diam > converge_dist)
                & (gap <= period_tol * diam))
    trapped = (~diverged & ~converged & (dist.amin(1) >= trap_dist)
               & (grad_norm.amin(1) >= trap_grad) & (revolutions >= min_turns) & ring
               & (drift.abs() <= drift_tol))
    return {"converged": converged, "trapped": trapped, "diverged": diverged,
            "periodic": periodic, "tail_dist": dist.amin(1), "tail_grad_norm": grad_norm.amin(1),
            "final_dist": final_dist, "revolutions": revolutions, "radius": r_last,
            "radial_drift": drift}


def initial_points(game: Any, p: MinMaxParams, seed: int) -> Tensor:
    gen = stream(seed, "minmax/init")
    if p.init_box is None:
        return game.sample_init(p.trajectories, gen)
    box = torch.tensor(p.init_box, dtype=torch.float64)
    if box.shape != (game.dim, 2):
        raise ValueError(f"init_box must be {game.dim} pairs [lo, hi], got {p.init_box}")
    u = torch.rand(p.trajectories, game.dim, generator=gen, dtype=torch.float64)
    return box[:, 0] + (box[:, 1] - box[:, 0]) * u


@experiment(
    "minmax_dynamics",
    family="minmax",
    params=MinMaxParams,
    columns=("traj", "step_rule", "converged", "trapped", "diverged", "periodic", "tail_dist",
             "tail_grad_norm", "final_dist", "revolutions", "radius", "radial_drift"),
    example={"trajectories": 4, "steps": 40, "tail_samples": 8, "noise": 0.1},
)
def minmax_dynamics(p: MinMaxParams, seeds: Sequence[int], device: torch.device) -> pd.DataFrame:
    """One row per (seed, trajectory): where ``algorithm`` takes random initial points of
    ``game`` (all seeds' trajectories in one batch, on the CPU in float64; ``device`` is not
    used: a few thousand numbers per operation gain nothing from an accelerator)."""
    game = get_method(GAMES, p.game)(**p.game_params)
    algorithm = get_method(ALGORITHMS, p.algorithm)()
    z0 = torch.cat([initial_points(game, p, s) for s in seeds])
    oracle = Oracle(game, p.noise, streams(seeds, "minmax/noise"))
    start = tail_start(p.schedule, p.steps, p.tail)
    tail = run_tail(game, algorithm, oracle, z0, p.schedule, p.steps, start, p.tail_samples)
    n, m, d = tail.shape
    grad_norm = game.operator(tail.reshape(n * m, d)).norm(dim=1).reshape(n, m)
    events = classify_tails(tail, grad_norm, game.critical_points,
                            converge_dist=p.converge_dist, trap_dist=p.trap_dist,
                            trap_grad=p.trap_grad, escape_radius=p.escape_radius,
                            period_tol=p.period_tol, min_turns=p.min_turns,
                            drift_tol=p.drift_tol)
    table = pd.DataFrame({name: value.numpy() for name, value in events.items()})
    for name in ("converged", "trapped", "diverged", "periodic"):
        table[name] = table[name].astype(int)
    table.insert(0, "step_rule", "adaptive" if algorithm.adaptive_step else p.schedule.label())
    table.insert(0, "traj", np.tile(np.arange(p.trajectories), len(seeds)))
    table.insert(0, "seed", np.repeat(np.asarray(seeds), p.trajectories))
    return table
