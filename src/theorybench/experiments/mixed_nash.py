"""Mixed Nash equilibria: Langevin dynamics over mixed strategies escape where pure GDA is trapped.

Claim (Hsieh, Liu, Cevher, "Finding mixed Nash equilibria of generative adversarial networks",
ICML 2019; Kamalaruban, Huang, Hsieh, Rolland, Shi, Cevher, "Robust reinforcement learning via
adversarial training with Langevin dynamics", NeurIPS 2020; the seeds' slide "Escaping traps
with the mixed-NE concept"): on

    max_{ω ∈ [−2, 2]} min_{θ ∈ [−2, 2]} f(θ, ω) = −ω²θ² + ωθ

pure gradient descent-ascent is trapped, while entropic mirror descent over mixed strategies,
implemented by Langevin particles, reaches a mixed Nash equilibrium.

The game. V = [∂_θ f, −∂_ω f] = (1 − 2ωθ)·[ω, −θ]: the pure flow runs along circles
θ² + ω² = r², at speed |1 − 2ωθ|, and stops on the hyperbola ωθ = 1/2, a curve of stationary
points that are not equilibria (f is concave in θ there: a local *maximum* for the minimizer).
A circle meets the hyperbola when r ≥ 1, and half of its crossings attract along the circle;
GDA's discretization spirals out from r < 1 (the origin repels, as for xy). So pure GDA ends on
the hyperbola. Mixed strategies p (of θ) and q (of ω) give F(p, q) = E_p E_q f; with the moments
m_k = E_p θ^k, n_k = E_q ω^k the best responses are explicit and the duality gap is

    gap(p, q) = max_ω (−ω² m₂ + ω m₁) − min_θ (−θ² n₂ + θ n₁)
              = max_{|ω|≤2} (−ω² m₂ + ω m₁) + 4 n₂ + 2|n₁|,

zero exactly at the mixed equilibria {q = δ₀, E_p θ = 0} (value 0). The pure pair on the
hyperbola has gap ≥ 1/4 + 4ω² + 2|ω| − … (≈ 3.7 at θ = ω = 1/√2).

Dynamics (kind ``mixed_nash``), per run: N particles θ_i for p and N particles ω_j for q,
started at a random pure start (θ₀, ω₀) uniform in the box plus ``spread`` · N(0, 1), updated
simultaneously with the mean-field gradients of F and Langevin noise at temperature T
(mean-field Langevin descent-ascent, the particle form of the entropic mirror flow):

    θ_i ← θ_i − γ(−2θ_i n₂ + n₁) + √(2γT) ξ_i,    ω_j ← ω_j + γ(−2ω_j m₂ + m₁) + √(2γT) ξ'_j,

reflected into [−2, 2]. ``algorithm: gda`` is the pure method: one particle per player, T = 0,
spread 0 (the same update, which then is projected GDA). One row per run with ``gap`` (duality
gap of the final particle measures), ``value`` (F(p, q)), ``ridge`` (1 when the pure pair sits
on the stationary hyperbola, |2θω − 1| ≤ 0.05, for GDA; for particles the fraction of pairs
(θ_i, ω_j) that do), ``mean_theta``, ``mean_omega``, ``spread_theta`` and ``spread_omega``
(standard deviations of the particles), and the 0/1 events ``at_equilibrium`` (gap ≤
``gap_tol``) and ``trapped`` (gap > ``gap_tol`` with at least half of the pairs on the ridge).
Each seed draws its starts and its noise from its ``mixed_nash/run`` stream alone.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import numpy as np
import pandas as pd
import torch
from pydantic import BaseModel, ConfigDict, Field

from theorybench.registry import experiment
from theorybench.streams import stream

BOX = 2.0


class MixedNashParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    algorithm: Literal["gda", "langevin"] = Field(
        "langevin", description="pure GDA (one particle, no noise) or Langevin particles")
    particles: int = Field(256, ge=1, description="particles per player (langevin)")
    temperature: float = Field(0.01, ge=0, description="T of the Langevin noise √(2γT)ξ")
    spread: float = Field(0.05, ge=0, description="σ of the particles around the pure start")
    step: float = Field(0.05, gt=0, description="γ")
    steps: int = Field(4000, ge=1)
    runs: int = Field(32, ge=1, description="independent runs (random pure starts) per seed")
    ridge_tol: float = Field(0.05, gt=0, description="|2θω − 1| of a pair on the ridge")
    gap_tol: float = Field(0.1, gt=0, description="duality gap of an equilibrium")


def reflect(x: np.ndarray) -> np.ndarray:
    """Reflect into [−BOX, BOX] (once, then clip: a step never crosses the box twice)."""
    x = np.where(x > BOX, 2 * BOX - x, x)
    x = np.where(x < -BOX, -2 * BOX - x, x)
    return np.clip(x, -BOX, BOX)


def duality_gap(theta: np.ndarray, omega: np.ndarray) -> np.ndarray:
    """gap(p, q) of the empirical measures of the rows of ``theta`` and ``omega`` (runs, N)."""
    m1, m2 = theta.mean(1), (theta * theta).mean(1)
    n1, n2 = omega.mean(1), (omega * omega).mean(1)
    with np.errstate(divide="ignore", invalid="ignore"):
        best = np.where(m2 > 0, np.clip(m1 / (2 * m2), -BOX, BOX), np.sign(m1) * BOX)
    return -best * best * m2 + best * m1 + BOX * BOX * n2 + BOX * np.abs(n1)


def payoff(theta: np.ndarray, omega: np.ndarray) -> np.ndarray:
    """F(p, q) = E_p E_q (−ω²θ² + ωθ) = −m₂n₂ + m₁n₁."""
    return -(theta * theta).mean(1) * (omega * omega).mean(1) + theta.mean(1) * omega.mean(1)


CHUNK = 256
"""Steps whose Langevin noise is drawn at once (from the seed's generator, in step order)."""


def langevin_descent_ascent(theta: np.ndarray, omega: np.ndarray, p: MixedNashParams,
                            temperature: float,
                            gen: torch.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``p.steps`` simultaneous mean-field Langevin steps (the module docstring's update) on the
    particles ``theta``, ``omega`` (runs, N); numpy arithmetic, noise from ``gen``."""
    scale = math.sqrt(2 * p.step * temperature)
    for k0 in range(0, p.steps, CHUNK):
        chunk = min(CHUNK, p.steps - k0)
        noise = (scale * torch.randn((chunk, 2, *theta.shape), generator=gen,
                                     dtype=torch.float64).numpy() if scale > 0 else None)
        for k in range(chunk):
            m1, m2 = theta.mean(1, keepdims=True), (theta * theta).mean(1, keepdims=True)
            n1, n2 = omega.mean(1, keepdims=True), (omega * omega).mean(1, keepdims=True)
            theta_next = theta - p.step * (-2 * theta * n2 + n1)
            omega_next = omega + p.step * (-2 * omega * m2 + m1)
            if noise is not None:
                theta_next += noise[k, 0]
                omega_next += noise[k, 1]
            theta, omega = reflect(theta_next), reflect(omega_next)
    return theta, omega


@experiment(
    "mixed_nash",
    family="minmax",
    params=MixedNashParams,
    columns=("run", "at_equilibrium", "trapped", "gap", "value", "ridge", "mean_theta",
             "mean_omega", "spread_theta", "spread_omega"),
    example={"particles": 8, "steps": 20, "runs": 3},
)
def mixed_nash(p: MixedNashParams, seeds: Sequence[int], device: torch.device) -> pd.DataFrame:
    """One row per (seed, run): where pure GDA or Langevin particles end on the game of the module
    docstring, with the duality gap of the final mixed strategies (CPU, float64; ``device`` is not
    used)."""
    pure = p.algorithm == "gda"
    n, temperature, spread = (1, 0.0, 0.0) if pure else (p.particles, p.temperature, p.spread)
    tables = []
    for seed in seeds:
        gen = stream(seed, "mixed_nash/run")
        start = ((2 * torch.rand(p.runs, 2, generator=gen, dtype=torch.float64) - 1) * BOX).numpy()
        jitter = spread * torch.randn(p.runs, 2, n, generator=gen, dtype=torch.float64).numpy()
        theta = reflect(start[:, :1] + jitter[:, 0])
        omega = reflect(start[:, 1:] + jitter[:, 1])
        theta, omega = langevin_descent_ascent(theta, omega, p, temperature, gen)
        pairs = 2 * theta[:, :, None] * omega[:, None, :] - 1
        gap, ridge = duality_gap(theta, omega), (np.abs(pairs) <= p.ridge_tol).mean((1, 2))
        tables.append(pd.DataFrame({
            "seed": seed,
            "run": np.arange(p.runs),
            "at_equilibrium": (gap <= p.gap_tol).astype(int),
            "trapped": ((gap > p.gap_tol) & (ridge >= 0.5)).astype(int),
            "gap": gap,
            "value": payoff(theta, omega),
            "ridge": ridge,
            "mean_theta": theta.mean(1),
            "mean_omega": omega.mean(1),
            "spread_theta": theta.std(1),
            "spread_omega": omega.std(1),
        }))
    return pd.concat(tables, ignore_index=True)
