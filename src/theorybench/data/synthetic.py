"""Synthetic data sets drawn from a seeded ``torch.Generator``.

Small functions, each returning tensors; a leading ``batch`` dimension (seeds) where noted.

* ``sphere(n, dim)``: points uniform on the unit sphere, ``a = g / ‖g‖``, ``g ~ N(0, I)``.
* ``teacher_regression(n, dim)``: ``a ~ N(0, I/dim)`` and a single-index target
  ``f*(a) = tanh(√dim ⟨β, a⟩)`` with ``β`` uniform on the sphere, standardized to unit variance;
  ``y = f*(a) + noise · ε``, ``ε ~ N(0, 1)``.
* ``linear_regression(n, dim)``: ``a ~ N(0, I)``, ``y = ⟨x*, a⟩ + noise · ε`` with
  ``x* ~ N(0, I/dim)``; the least-squares minimizer is computed by the caller.
"""

from __future__ import annotations

import math

import torch


def sphere(
    n: int, dim: int, gen: torch.Generator, batch: tuple[int, ...] = (),
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """``(*batch, n, dim)`` points uniform on the unit sphere of ``ℝ^dim``."""
    g = torch.randn(*batch, n, dim, generator=gen, dtype=dtype)
    return g / g.norm(dim=-1, keepdim=True)


def teacher_regression(
    n: int, dim: int, noise: float, gen: torch.Generator, batch: tuple[int, ...] = (),
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Inputs ``(*batch, n, dim)``, noisy targets and clean targets ``(*batch, n)``.

    The teacher direction ``β`` is drawn per batch element, so each seed has its own task.
    """
    beta = sphere(1, dim, gen, batch).squeeze(-2)  # (*batch, dim)
    a = torch.randn(*batch, n, dim, generator=gen) / math.sqrt(dim)
    clean = torch.tanh(math.sqrt(dim) * torch.einsum("...nd,...d->...n", a, beta))
    clean = clean / 0.6278  # sd of tanh(Z), Z ~ N(0, 1): unit-variance targets
    noisy = clean + noise * torch.randn(clean.shape, generator=gen)
    return a, noisy, clean


def linear_regression(
    n: int, dim: int, noise: float, gen: torch.Generator, batch: tuple[int, ...] = (),
    dtype: torch.dtype = torch.float32,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Inputs ``(*batch, n, dim)`` with ``N(0, I)`` rows and targets ``(*batch, n)``."""
    a = torch.randn(*batch, n, dim, generator=gen, dtype=dtype)
    x_star = torch.randn(*batch, dim, generator=gen, dtype=dtype) / math.sqrt(dim)
    y = torch.einsum("...nd,...d->...n", a, x_star)
    return a, y + noise * torch.randn(y.shape, generator=gen, dtype=dtype)
