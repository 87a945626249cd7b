"""The ``interior_minimum`` rule: its rate of ``holds`` at each boundary of its nulls (a small
Monte Carlo), its power, and the registered rule on a table."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from theorybench_example.interior_minimum import InteriorMinimumSpec, interior_minimum_test

from theorybench.registry import get_rule

DRAWS = 2000
LEVEL = 0.025  # one-sided level at confidence 0.95
SLACK = 3 * math.sqrt(LEVEL * (1 - LEVEL) / DRAWS)  # three Monte-Carlo standard errors
MIN_EFFECT = 0.5
FAR = 50.0


def noise(rng: np.random.Generator, kind: str, shape: tuple[int, ...]) -> np.ndarray:
    if kind == "normal":
        return rng.standard_normal(shape)
    return rng.standard_t(3, shape) / math.sqrt(3)  # unit variance, heavy tails


def rate(mean: list[float], seeds: int, kind: str, key: str, seed: int) -> float:
    """Fraction of ``DRAWS`` tables (seeds × levels, the level means plus noise) with
    ``key`` ≤ the one-sided level."""
    rng = np.random.default_rng(seed)
    curves = np.asarray(mean) + noise(rng, kind, (DRAWS, seeds, len(mean)))
    return float((interior_minimum_test(curves, MIN_EFFECT, 0.95)[key] <= LEVEL).mean())


CASES = [(s, n_levels, kind) for s in (4, 8, 16) for n_levels in (3, 8)
         for kind in ("normal", "t3")]


@pytest.mark.parametrize(("seeds", "n_levels", "kind"), CASES)
def test_present_holds_at_most_nominal_at_its_boundary(seeds, n_levels, kind):
    """Least favourable null of "some interior level dips by > m": every interior level falls
    exactly m below the start and lies far below the end."""
    boundary = [0.0] + [-MIN_EFFECT] * (n_levels - 2) + [FAR]
    assert rate(boundary, seeds, kind, "p_some", seeds * 100 + n_levels) <= LEVEL + SLACK


@pytest.mark.parametrize(("seeds", "n_levels", "kind"), CASES)
def test_absent_holds_at_most_nominal_at_its_boundary(seeds, n_levels, kind):
    """Least favourable null of "no interior level dips by > m": one interior level exactly m
    below both ends, every other one far above them."""
    boundary = [0.0, -MIN_EFFECT] + [FAR] * (n_levels - 3) + [0.0]
    assert rate(boundary, seeds, kind, "p_none", seeds * 100 + n_levels + 1) <= LEVEL + SLACK


def test_power_of_a_dip():
    """A dip 2 noise SDs deeper than min_effect below both ends: found on most tables from 8
    seeds, and never refuted."""
    for seeds in (8, 16):
        dip = [0.0, -2.5, -2.5, -2.5, 0.0]
        assert rate(dip, seeds, "normal", "p_some", seeds) >= 0.8
        assert rate(dip, seeds, "normal", "p_none", seeds + 1) == 0.0


def test_power_of_no_dip():
    """A curve falling to its end (every interior level 1 SD above the end): "no dip" holds on
    most tables with 16 seeds, and "a dip" is never claimed."""
    falling = [0.0, 0.5, 0.5, 0.5, -0.5]
    assert rate(falling, 16, "normal", "p_none", 3) >= 0.8
    assert rate(falling, 16, "normal", "p_some", 4) == 0.0


def table(mean: list[float], seeds: int, rng: np.random.Generator) -> pd.DataFrame:
    rows = [{"seed": s, "time": float(t), "risk": m + 0.05 * rng.standard_normal()}
            for s in range(seeds) for t, m in enumerate(mean)]
    return pd.DataFrame(rows)


def test_the_registered_rule_decides_both_ways():
    entry = get_rule("interior_minimum")
    assert entry.spec is InteriorMinimumSpec
    rng = np.random.default_rng(0)
    u_shape, falling = table([1.0, 0.7, 0.8, 1.5], 8, rng), table([1.0, 0.7, 0.5, 0.4], 8, rng)
    present = InteriorMinimumSpec(rule="interior_minimum", metric="risk", along="time",
                                  min_effect=0.1)
    absent = present.model_copy(update={"present": False})
    assert entry.evaluate(present, u_shape, rng).decision == "holds"
    assert entry.evaluate(present, falling, rng).decision == "refuted"
    assert entry.evaluate(absent, falling, rng).decision == "holds"
    result = entry.evaluate(absent, u_shape, rng)
    assert result.decision == "refuted"
    assert result.detail["deepest"] == 1.0 and result.effect == pytest.approx(0.3, abs=0.1)
    assert "interior minimum" in entry.describe(present.model_dump())
    assert "no interior minimum" in entry.describe(absent.model_dump())
