"""Interval estimates and small helpers shared by the decision rules.

All intervals are two-sided at level ``confidence`` (``c``), with ``α = 1 − c``.

* **Clopper–Pearson** (exact) interval of a binomial proportion ``k / n``:
  ``[Beta⁻¹(α/2; k, n − k + 1), Beta⁻¹(1 − α/2; k + 1, n − k)]`` (0 when ``k = 0``, 1 when
  ``k = n``). Coverage is at least ``c`` for every true proportion.
* **Kendall's τ_b** between ``x`` and ``y``: ``Σ_{i,j} sx_ij sy_ij / √(Σ sx_ij² · Σ sy_ij²)`` with
  ``sx_ij = sign(x_i − x_j)``, ``sy_ij = sign(y_i − y_j)`` over the pairs where both are defined.

Tests (one-sided p-values; every interval below is the inversion of the matching pair of tests,
so an interval decision and a p-value decision at level ``α/2`` always agree):

* :func:`mean_test`: Student-t test of ``mean = threshold`` over ``n`` units with a continuity
  correction for discrete metrics: ``T₊ = (x̄ − c − threshold) / (s / √n)``, ``p_above =
  P(t_{n−1} ≥ T₊)``, ``T₋ = (x̄ + c − threshold) / (s / √n)``, ``p_below = P(t_{n−1} ≤ T₋)``, where
  ``c = h / (2n)`` and ``h`` is the smallest gap between distinct values (the metric's lattice
  spacing when it is discrete, negligible when it is continuous); the interval is ``x̄ ±
  (t_{1−α/2, n−1} s / √n + c)``. Without the correction the t test on integer-valued metrics
  says ``holds`` up to 0.031 of the time at a nominal 0.025. When every
  unit gives the same value (``s = 0``) the t interval would collapse to a point; the test then
  falls back to the **sign test** (below) on how many units lie above / below the threshold, and
  the reported effect becomes that fraction with its Clopper–Pearson interval.
* :func:`proportion_test`: exact binomial test of a proportion ``p`` against ``p0`` from a count
  known to lie in ``[k_min, k_max]`` (units tied at a threshold count against whichever side is
  being claimed): ``p_above = P(Bin(n, p0) ≥ k_min)``, ``p_below = P(Bin(n, p0) ≤ k_max)``; its
  interval is ``[CP_low(k_min), CP_high(k_max)]``. With ``p0 = 1/2`` and the count of units on
  the claimed side of a threshold this is the **sign test** of the median.
* :func:`holm`: Holm's step-down adjusted p-values ``p̃_(i) = max_{j ≤ i} min(1, (m − j + 1)
  p_(j))`` over the sorted ``p_(1) ≤ … ≤ p_(m)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from theorybench.numbers import fmt as fmt  # noqa: F401  (the rules' summaries use it)
from theorybench.numbers import jsonable as jsonable  # noqa: F401  (the rules' details)
from theorybench.verdict.base import RuleError, RuleSpec

# scipy.stats is imported by the functions that use it: importing it takes about a second, and
# a run whose judgments are all read back (theorybench.judging) needs none of it.

MIN_SEEDS = 3
"""A rule whose interval is over seeds needs at least this many seeds."""


def clopper_pearson(k: int, n: int, confidence: float) -> tuple[float, float]:
    """Exact binomial interval for ``k`` successes in ``n`` trials (:func:`cp_bounds`)."""
    low, high = cp_bounds(k, k, n, confidence)
    return float(low), float(high)


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
    """``rows[column]`` as floats; RuleError when a row holds no number (missing or not one)."""
    values = pd.to_numeric(rows[column], errors="coerce")
    if values.isna().any():
        raise RuleError(f"column {column!r} must hold a number in every row it reads: "
                        f"{int(values.isna().sum())} of {len(values)} rows do not "
                        f"(dtype {rows[column].dtype})")
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


def where_words(where: dict[str, Any]) -> str:
    """A rule's row filter in words (empty when it keeps every row)."""
    if not where:
        return ""
    return " (rows where " + ", ".join(f"{k} = {v}" for k, v in where.items()) + ")"


def level_words(fields: dict[str, Any]) -> str:
    """A rule's interval level in words, e.g. ``95%``."""
    return f"{100 * float(fields.get('confidence', 0.95)):g}%"


SIGN_TEST_FALLBACK = ("; when every seed gives the same value, the sign test on how many seeds "
                      "lie on the claimed side stands in (it needs at least 6 seeds).")


def one_sided_level(confidence: float) -> float:
    """The one-sided level ``(1 − confidence) / 2`` every decision is taken at."""
    return (1.0 - confidence) / 2.0


def cp_bounds(
    k_min: np.ndarray | int, k_max: np.ndarray | int, n: np.ndarray | int, confidence: float
) -> tuple[np.ndarray, np.ndarray]:
    """Clopper–Pearson ``[Beta⁻¹(α/2; k_min, n − k_min + 1), Beta⁻¹(1 − α/2; k_max + 1, n −
    k_max)]`` with ``α = 1 − confidence``, vectorised (0 when ``k_min = 0``, 1 when
    ``k_max = n``)."""
    from scipy import stats as sps
    a = (1.0 - confidence) / 2.0
    k_min, k_max, n = (np.asarray(v, dtype=float) for v in (k_min, k_max, n))
    with np.errstate(invalid="ignore", divide="ignore"):
        low = np.where(k_min <= 0, 0.0, sps.beta.ppf(a, np.maximum(k_min, 1), n - k_min + 1))
        high = np.where(k_max >= n, 1.0, sps.beta.ppf(1 - a, k_max + 1, np.maximum(n - k_max, 1)))
    return low, high


def proportion_test(
    k_min: np.ndarray | int,
    k_max: np.ndarray | int,
    n: np.ndarray | int,
    p0: float,
    confidence: float,
) -> dict[str, np.ndarray]:
    """Exact binomial inference on a proportion whose count lies in ``[k_min, k_max]``.

    Returns ``low``, ``high`` (Clopper–Pearson) and ``p_above`` = ``P(Bin(n, p0) ≥ k_min)``
    (evidence that ``p > p0``), ``p_below`` = ``P(Bin(n, p0) ≤ k_max)`` (evidence that
    ``p < p0``). ``low > p0 ⇔ p_above < α/2`` and ``high < p0 ⇔ p_below < α/2``.
    """
    from scipy import stats as sps
    k_min, k_max, n = (np.asarray(v, dtype=float) for v in (k_min, k_max, n))
    low, high = cp_bounds(k_min, k_max, n, confidence)
    return {
        "low": low,
        "high": high,
        "p_above": np.where(k_min <= 0, 1.0, sps.binom.sf(k_min - 1, n, p0)),
        "p_below": np.where(k_max >= n, 1.0, sps.binom.cdf(k_max, n, p0)),
    }


def sign_test(
    values: np.ndarray, threshold: float | np.ndarray, confidence: float
) -> dict[str, np.ndarray]:
    """Sign test of ``median(values) = threshold`` along the last axis (NaN left out).

    The effect is ``k₊ / n``, the fraction strictly above the threshold; ``p_above`` uses ``k₊``
    (ties count against "above"), ``p_below`` uses ``n − k₋`` (ties count against "below").
    """
    v = np.asarray(values, dtype=float)
    thr = np.asarray(threshold, dtype=float)[..., None] if np.ndim(threshold) else threshold
    defined = ~np.isnan(v)
    n = defined.sum(axis=-1)
    above = (v > thr).sum(axis=-1)
    below = (v < thr).sum(axis=-1)
    out = proportion_test(above, n - below, n, 0.5, confidence)
    with np.errstate(invalid="ignore", divide="ignore"):
        out["effect"] = np.where(n > 0, above / np.maximum(n, 1), np.nan)
    out["n"] = n
    return out


def mean_test(
    values: np.ndarray, threshold: float | np.ndarray, confidence: float
) -> dict[str, np.ndarray]:
    """Student-t test and interval of the mean of ``values`` (last axis) against ``threshold``.

    Where every value along the axis is the same, the t interval would have zero width: those
    entries get the sign test instead (``sign`` is True there, and ``effect``, ``low``, ``high``
    are the fraction of units above the threshold and its Clopper–Pearson interval).
    """
    from scipy import stats as sps
    v = np.asarray(values, dtype=float)
    n = v.shape[-1]
    if n < 2:
        raise ValueError(f"a t test needs at least 2 values, got {n}")
    mean = v.mean(axis=-1)
    sd = v.std(axis=-1, ddof=1)
    scale = np.maximum(np.abs(mean), 1.0)
    sign = sd <= 1e-12 * scale
    se = np.where(sign, 1.0, sd) / np.sqrt(n)
    gaps = np.diff(np.sort(v, axis=-1), axis=-1)
    lattice = np.where(gaps > 1e-12 * scale[..., None], gaps, np.inf).min(axis=-1)
    shift = np.where(np.isfinite(lattice), lattice, 0.0) / (2 * n)
    t_up = (mean - shift - threshold) / se
    t_down = (mean + shift - threshold) / se
    half = sps.t.ppf(0.5 + confidence / 2, n - 1) * se + shift
    signs = sign_test(v, threshold, confidence)
    return {
        "effect": np.where(sign, signs["effect"], mean),
        "low": np.where(sign, signs["low"], mean - half),
        "high": np.where(sign, signs["high"], mean + half),
        "p_above": np.where(sign, signs["p_above"], sps.t.sf(t_up, n - 1)),
        "p_below": np.where(sign, signs["p_below"], sps.t.cdf(t_down, n - 1)),
        "sign": sign,
    }


def side_test(
    values: np.ndarray, threshold: float | np.ndarray, above: bool, confidence: float
) -> dict[str, np.ndarray]:
    """:func:`mean_test` for a claim that the mean lies ``above`` (or below) ``threshold``:
    adds ``p_holds`` and ``p_refuted``; where the sign test stood in, the effect and interval are
    the fraction of units on the claimed side (so ``holds`` ⇔ ``low > ½``)."""
    out = mean_test(values, threshold, confidence)
    up, down = out["p_above"], out["p_below"]
    out["p_holds"], out["p_refuted"] = (up, down) if above else (down, up)
    if not above:
        sign = out["sign"]
        out["effect"], out["low"], out["high"] = (
            np.where(sign, 1.0 - out["effect"], out["effect"]),
            np.where(sign, 1.0 - out["high"], out["low"]),
            np.where(sign, 1.0 - out["low"], out["high"]),
        )
    return out


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm step-down adjusted p-values, in the order given."""
    p = np.asarray(p_values, dtype=float)
    m = len(p)
    if m == 0:
        return []
    order = np.argsort(p, kind="stable")
    stepped = np.minimum(1.0, (m - np.arange(m)) * p[order])
    adjusted = np.empty(m)
    adjusted[order] = np.maximum.accumulate(stepped)
    return [float(x) for x in adjusted]


def clip(value: float, bounds: tuple[float | None, float | None] | None) -> float:
    """``value`` clipped to ``bounds`` (either end may be None)."""
    if bounds is None:
        return value
    low, high = bounds
    if low is not None:
        value = max(value, low)
    if high is not None:
        value = min(value, high)
    return value
