"""Interval estimates and small helpers shared by the decision rules.

All intervals are two-sided at level ``confidence`` (``c``), with ``α = 1 − c``.

* **Student-t interval** of a mean over ``n`` independent units (seeds):
  ``x̄ ± t_{1−α/2, n−1} · s / √n`` with ``s`` the sample standard deviation (``ddof = 1``).
  It collapses to a point when every unit agrees (``s = 0``).
* **Percentile bootstrap** over seeds: resample the ``n`` seeds with replacement ``B`` times,
  recompute the statistic, take the ``α/2`` and ``1 − α/2`` quantiles of the ``B`` values.
* **Clopper–Pearson** (exact) interval of a binomial proportion ``k / n``:
  ``[Beta⁻¹(α/2; k, n − k + 1), Beta⁻¹(1 − α/2; k + 1, n − k)]`` (0 when ``k = 0``, 1 when
  ``k = n``). Coverage is at least ``c`` for every true proportion.
* **Wilson score** interval: ``(k + z²/2) / (n + z²) ± z / (n + z²) · √(k(n − k)/n + z²/4)``
  with ``z = Φ⁻¹(1 − α/2)``; coverage close to ``c`` on average, not guaranteed.
* **Kendall's τ_b** between ``x`` and ``y``: ``Σ_{i,j} sx_ij sy_ij / √(Σ sx_ij² · Σ sy_ij²)`` with
  ``sx_ij = sign(x_i − x_j)``, ``sy_ij = sign(y_i − y_j)`` over the pairs where both are defined.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats as sps

from theorybench.verdict.base import RuleError, RuleSpec

MIN_SEEDS = 3
"""A rule whose interval is over seeds needs at least this many seeds."""


def t_interval(
    values: np.ndarray, confidence: float, axis: int = -1
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean of ``values`` along ``axis`` with its Student-t interval: ``(mean, low, high)``."""
    v = np.asarray(values, dtype=float)
    n = v.shape[axis]
    if n < 2:
        raise ValueError(f"a t interval needs at least 2 values, got {n}")
    mean = v.mean(axis=axis)
    half = sps.t.ppf(0.5 + confidence / 2, n - 1) * v.std(axis=axis, ddof=1) / np.sqrt(n)
    return mean, mean - half, mean + half


def bootstrap_rows(rng: np.random.Generator, n: int, n_boot: int) -> np.ndarray:
    """``n_boot`` resamples of ``range(n)`` with replacement, shape ``(n_boot, n)``."""
    return rng.integers(0, n, size=(n_boot, n))


def percentile_interval(samples: np.ndarray, confidence: float) -> tuple[float, float]:
    """The ``α/2`` and ``1 − α/2`` quantiles of bootstrap ``samples``."""
    alpha = 1.0 - confidence
    low, high = np.quantile(np.asarray(samples, dtype=float), [alpha / 2, 1 - alpha / 2])
    return float(low), float(high)


def clopper_pearson(k: int, n: int, confidence: float) -> tuple[float, float]:
    """Exact binomial interval for ``k`` successes in ``n`` trials."""
    alpha = 1.0 - confidence
    low = 0.0 if k == 0 else float(sps.beta.ppf(alpha / 2, k, n - k + 1))
    high = 1.0 if k == n else float(sps.beta.ppf(1 - alpha / 2, k + 1, n - k))
    return low, high


def wilson(k: int, n: int, confidence: float) -> tuple[float, float]:
    """Wilson score interval for ``k`` successes in ``n`` trials."""
    z = float(sps.norm.ppf(0.5 + confidence / 2))
    centre = (k + z**2 / 2) / (n + z**2)
    half = z / (n + z**2) * np.sqrt(k * (n - k) / n + z**2 / 4)
    return max(0.0, centre - half), min(1.0, centre + half)


def kendall_tau(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Kendall's τ_b of ``y`` against ``x`` along the last axis, broadcasting leading axes.

    NaN entries of ``y`` are left out pairwise. The result is NaN where fewer than two distinct
    ``x`` values have a defined ``y``, and 0 where ``y`` is constant over them (no ordering).
    """
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    defined = ~np.isnan(y)
    both = defined[..., :, None] & defined[..., None, :]
    sx = np.sign(x[..., :, None] - x[..., None, :]) * both
    sy = np.nan_to_num(np.sign(y[..., :, None] - y[..., None, :])) * both
    concordance = (sx * sy).sum(axis=(-2, -1))
    x_pairs = (sx**2).sum(axis=(-2, -1))
    y_pairs = (sy**2).sum(axis=(-2, -1))
    with np.errstate(invalid="ignore", divide="ignore"):
        tau = np.where(y_pairs > 0, concordance / np.sqrt(x_pairs * y_pairs), 0.0)
    return np.where(x_pairs > 0, tau, np.nan)


def numeric_column(rows: pd.DataFrame, column: str) -> pd.Series:
    """``rows[column]`` as floats; RuleError when it holds non-numbers."""
    values = pd.to_numeric(rows[column], errors="coerce")
    if values.isna().any():
        raise RuleError(f"column {column!r} must be numeric, got {rows[column].dtype}")
    return values.astype(float)


def require_seeds(seeds: Sequence[Any] | np.ndarray | pd.Index, spec: RuleSpec) -> None:
    """RuleError when fewer than :data:`MIN_SEEDS` seeds remain for an interval over seeds."""
    if len(seeds) < MIN_SEEDS:
        name = getattr(spec, "rule", "rule")
        raise RuleError(
            f"{name} on {spec.metric!r} needs at least {MIN_SEEDS} seeds "
            f"for an interval over seeds, got {len(seeds)}"
        )


def per_level_means(rows: pd.DataFrame, metric: str, along: str) -> pd.DataFrame:
    """Seeds × levels matrix of ``metric`` averaged over rows sharing (seed, ``along``).

    Levels (the distinct ``along`` values) are sorted ascending; a seed missing a level has NaN.
    """
    frame = pd.DataFrame(
        {
            "seed": rows["seed"].to_numpy(),
            "level": numeric_column(rows, along).to_numpy(),
            "value": rows[metric].astype(float).to_numpy(),
        }
    )
    matrix = frame.pivot_table(index="seed", columns="level", values="value", aggfunc="mean")
    return matrix.sort_index(axis=0).sort_index(axis=1)


def jsonable(value: Any) -> Any:
    """``value`` with numpy scalars and arrays turned into Python floats, ints, bools and lists
    (recursively through dicts, lists and tuples); NaN and infinities become None."""
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, np.ndarray | list | tuple | pd.Index | pd.Series):
        return [jsonable(v) for v in list(value)]
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        return float(value) if np.isfinite(value) else None
    return value


def fmt(x: float) -> str:
    """A number for a summary sentence: 3 significant digits."""
    return f"{x:.3g}"
