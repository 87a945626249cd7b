"""Calibration of the decision rules: how often ``holds`` comes out under a null, and under a
real effect of known size.

For ``trend``, ``compare`` and ``threshold``, draw ``n_draws`` synthetic measurement tables with
``n_seeds`` seeds (and ``n_levels`` levels for ``trend``), all noise iid ``N(0, 1)``:

* ``trend`` (``min_effect: 0``, ``increasing``): ``y_s(level i) = shift · i + ε``. Null: shift 0.
  Power: shift ``TREND_SHIFT`` noise SDs per level.
* ``compare`` (``a_greater``, ``margin: 0``): ``y_s(arm) = μ_s + shift_arm + ε`` with a seed effect
  ``μ_s ~ N(0, 1)`` shared by both arms (common random numbers). Null: equal arms. Power: ``a``
  above ``b`` by ``COMPARE_SHIFT`` SDs of the paired difference (``√2`` noise SDs each).
* ``threshold`` (``op: ">"``, ``value: 0``): ``y_s = shift + ε``. Null: the true mean sits at the
  threshold. Power: ``THRESHOLD_SHIFT`` noise SDs above it.

The false-positive rate is the fraction of null draws where the rule ``holds``; the rules are
one-sided, so it should be near ``(1 − confidence) / 2`` and must not exceed ``1 − confidence``.
Power is the fraction of draws with the effect where it ``holds``. The draws are decided in
bulk with the same statistics the rules use (``stats.py``); the first ``rule_checks`` draws of
each batch are also built as tables and passed through the registered rule, and the report
counts any disagreement (there should be none).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from theorybench.verdict.base import RuleSpec
from theorybench.verdict.compare import CompareSpec, compare
from theorybench.verdict.stats import kendall_tau, t_interval
from theorybench.verdict.threshold import ThresholdSpec, threshold
from theorybench.verdict.trend import TrendSpec, trend

TREND_SHIFT = 0.5
COMPARE_SHIFT = 1.25
THRESHOLD_SHIFT = 1.25


@dataclass(frozen=True)
class _Case:
    """One rule under test: how to draw values, decide them in bulk, and build one table."""

    spec: RuleSpec
    rule: Callable[..., Any]
    shift: float
    power_at: str
    draw: Callable[[np.random.Generator, int, float], np.ndarray]
    holds: Callable[[np.ndarray], np.ndarray]
    table: Callable[[np.ndarray], pd.DataFrame]


def _cases(n_seeds: int, n_levels: int, confidence: float) -> dict[str, _Case]:
    seeds = np.arange(n_seeds)
    levels = np.arange(n_levels, dtype=float)

    def trend_table(y: np.ndarray) -> pd.DataFrame:
        return pd.DataFrame(
            {"seed": np.repeat(seeds, n_levels), "level": np.tile(levels, n_seeds), "y": y.ravel()}
        )

    def compare_draw(rng: np.random.Generator, n: int, shift: float) -> np.ndarray:
        arms = rng.normal(size=(n, n_seeds, 2)) + rng.normal(size=(n, n_seeds, 1))
        arms[..., 0] += shift * np.sqrt(2.0)
        return arms

    def compare_table(arms: np.ndarray) -> pd.DataFrame:
        return pd.DataFrame(
            {"seed": np.repeat(seeds, 2), "arm": np.tile(["a", "b"], n_seeds), "y": arms.ravel()}
        )

    def low_end(values: np.ndarray) -> np.ndarray:
        return t_interval(values, confidence)[1]

    return {
        "trend": _Case(
            spec=TrendSpec(
                rule="trend",
                metric="y",
                along="level",
                direction="increasing",
                confidence=confidence,
            ),
            rule=trend,
            shift=TREND_SHIFT,
            power_at=f"metric rises {TREND_SHIFT} noise SDs per level",
            draw=lambda rng, n, shift: rng.normal(size=(n, n_seeds, n_levels)) + shift * levels,
            holds=lambda y: low_end(kendall_tau(levels, y)) > 0,
            table=trend_table,
        ),
        "compare": _Case(
            spec=CompareSpec(
                rule="compare",
                metric="y",
                by="arm",
                a="a",
                b="b",
                direction="a_greater",
                confidence=confidence,
            ),
            rule=compare,
            shift=COMPARE_SHIFT,
            power_at=f"a - b = {COMPARE_SHIFT} SDs of the paired difference",
            draw=compare_draw,
            holds=lambda arms: low_end(arms[..., 0] - arms[..., 1]) > 0,
            table=compare_table,
        ),
        "threshold": _Case(
            spec=ThresholdSpec(
                rule="threshold", metric="y", op=">", value=0.0, confidence=confidence
            ),
            rule=threshold,
            shift=THRESHOLD_SHIFT,
            power_at=f"true mean {THRESHOLD_SHIFT} noise SDs above the threshold",
            draw=lambda rng, n, shift: rng.normal(size=(n, n_seeds)) + shift,
            holds=lambda y: low_end(y) > 0,
            table=lambda y: pd.DataFrame({"seed": seeds, "y": y}),
        ),
    }


def calibration_report(
    n_draws: int = 2000,
    seed: int = 0,
    n_seeds: int = 8,
    n_levels: int = 5,
    confidence: float = 0.95,
    rule_checks: int = 20,
) -> dict[str, dict[str, Any]]:
    """False-positive rate and power of ``trend``, ``compare`` and ``threshold``.

    Returns ``{rule: {false_positive_rate, false_positive_se, power, power_se, power_at,
    n_draws, n_seeds, n_levels, confidence, nominal_alpha, rule_mismatches}}`` with plain Python
    numbers (``*_se`` are Monte Carlo standard errors of the rates).
    """
    rng = np.random.default_rng(seed)
    report: dict[str, dict[str, Any]] = {}
    for name, case in _cases(n_seeds, n_levels, confidence).items():
        rates, mismatches = {}, 0
        for label, shift in (("false_positive", 0.0), ("power", case.shift)):
            values = case.draw(rng, n_draws, shift)
            holds = case.holds(values)
            rates[label] = float(holds.mean())
            for i in range(min(rule_checks, n_draws)):
                result = case.rule(case.spec, case.table(values[i]), np.random.default_rng(i))
                mismatches += int((result.decision == "holds") != bool(holds[i]))
        report[name] = {
            "false_positive_rate": rates["false_positive"],
            "false_positive_se": _se(rates["false_positive"], n_draws),
            "power": rates["power"],
            "power_se": _se(rates["power"], n_draws),
            "power_at": case.power_at,
            "n_draws": n_draws,
            "n_seeds": n_seeds,
            "n_levels": n_levels if name == "trend" else None,
            "confidence": confidence,
            "nominal_alpha": 1.0 - confidence,
            "rule_mismatches": mismatches,
        }
    return report


def _se(rate: float, n: int) -> float:
    return float(np.sqrt(rate * (1.0 - rate) / n))
