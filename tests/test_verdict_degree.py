"""``degree``: smallest polynomial degree that fits the metric; bound on violating seeds."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from theorybench.verdict import RuleError, evaluate, parse_rule
from theorybench.verdict.base import RuleResult
from theorybench.verdict.rules.degree import fitted_degree

H = np.linspace(-5.0, 5.0, 41)
POLYS = {
    0: lambda h: 2.0 + 0 * h,
    1: lambda h: 3.0 * h - 1.0,
    2: lambda h: 0.5 * h**2 - h + 2.0,
    3: lambda h: h**3 + h**2 - 5.0 * h + 5.0,
}


def run(table: pd.DataFrame, **fields) -> RuleResult:
    fields.setdefault("violation_tolerance", 0.5)
    spec = parse_rule({"rule": "degree", "metric": "out", "along": "h", **fields})
    (result,) = evaluate([spec], table)
    return result


def curves(fns, noise: float = 1e-4, seed: int = 0) -> pd.DataFrame:
    """One curve per seed: ``fns[s](H)`` plus noise relative to the curve's spread."""
    rng = np.random.default_rng(seed)
    frames = []
    for s, fn in enumerate(fns):
        y = fn(H)
        frames.append(
            pd.DataFrame(
                {"seed": s, "h": H, "out": y + noise * (y.std() + 1) * rng.normal(size=H.size)}
            )
        )
    return pd.concat(frames, ignore_index=True)


@pytest.mark.parametrize("true", [0, 1, 2, 3])
def test_exact_degree_is_found(true):
    result = run(curves([POLYS[true]] * 6), max_degree=max(true, 1), atol=1e-3)
    assert result.effect == 0.0 and result.threshold == 0.5
    assert result.ci_low == 0.0 < result.ci_high < 0.5
    assert result.decision == "holds"
    assert result.detail["seed_degree"] == [true] * 6
    assert result.p_holds == pytest.approx(0.5**6)


def test_every_seed_agrees_but_the_interval_does_not_collapse():
    result = run(curves([POLYS[1]] * 8), max_degree=1, violation_tolerance=0.4)
    assert result.decision == "holds"
    assert result.ci_high == pytest.approx(1 - 0.025 ** (1 / 8))


def test_one_violating_seed_of_eight_does_not_hold_at_a_tight_tolerance():
    table = curves([POLYS[3]] * 7 + [lambda h: POLYS[3](h) + 0.5 * h**4])
    result = run(table, max_degree=3, violation_tolerance=0.1)
    assert result.detail["seed_degree"] == [3] * 7 + [4]
    assert result.detail["mean_degree"] == pytest.approx(3.125)  # a mean "below 3.5"
    assert result.effect == 1 / 8 and result.decision == "inconclusive"
    assert run(table, max_degree=3, violation_tolerance=0.4).decision == "inconclusive"
    assert run(table, max_degree=3, violation_tolerance=0.6).decision == "holds"
    assert "1/8 seeds" in result.summary


def test_cubic_refutes_linear():
    result = run(curves([POLYS[3]] * 6), max_degree=1)
    assert result.decision == "refuted"
    assert result.effect == 1.0 and result.ci_low > 0.5
    assert "claimed < 0.5" in result.summary


def test_cosine_needs_a_high_degree():
    result = run(curves([lambda h: np.cos(2 * h)] * 6), max_degree=3)
    assert result.decision == "refuted"
    assert min(result.detail["seed_degree"]) > 8


def test_mixed_seeds_are_inconclusive():
    result = run(curves([POLYS[1], POLYS[3]] * 3), max_degree=2)
    assert result.effect == 0.5
    assert result.decision == "inconclusive"
    assert result.detail["degree_counts"] == {"1": 3, "3": 3}


def test_group_takes_the_largest_degree_per_seed():
    lines = curves([POLYS[1]] * 6).assign(direction=0)
    bends = curves([POLYS[2]] * 6, seed=1).assign(direction=1)
    table = pd.concat([lines, bends])
    assert run(table, max_degree=2, group="direction").detail["seed_degree"] == [2] * 6
    assert run(table, max_degree=1, group="direction").decision == "refuted"


def test_tolerance_decides_what_counts_as_exact():
    table = curves([lambda h: h + 0.05 * h**2] * 6, noise=0.0)
    assert run(table, max_degree=1, tolerance=0.2).decision == "holds"
    assert run(table, max_degree=1, tolerance=0.01).decision == "refuted"


def test_noisy_constant_needs_atol():
    table = curves([POLYS[0]] * 6)
    assert run(table, max_degree=1).decision == "refuted"
    assert run(table, max_degree=1, atol=1e-3).detail["seed_degree"] == [0] * 6


def test_the_bound_tolerance_is_required():
    with pytest.raises(ValidationError, match="violation_tolerance"):
        parse_rule({"rule": "degree", "metric": "out", "along": "h", "max_degree": 1})


def test_fitted_degree_keeps_a_residual_degree_of_freedom():
    h = np.arange(4.0)
    gamma, residuals = fitted_degree(h, h**3, tolerance=0.01, top=2)
    assert gamma == 3 and len(residuals) == 3
    assert fitted_degree(h, np.full(4, 7.0), 0.01, 2)[0] == 0


def test_detail_is_json():
    result = run(curves([POLYS[2]] * 3), max_degree=2)
    detail = json.loads(json.dumps(result.to_dict()))["detail"]
    assert (
        detail["relative_residual_by_degree"][2] < 0.01 < detail["relative_residual_by_degree"][1]
    )


def test_errors():
    with pytest.raises(RuleError, match="max_degree \\+ 2"):
        run(curves([POLYS[1]] * 3).query("h < -4.4"), max_degree=2)
    with pytest.raises(RuleError, match="at least 3 seeds"):
        run(curves([POLYS[1]] * 2), max_degree=1)
    with pytest.raises(RuleError, match="no column"):
        run(curves([POLYS[1]] * 3), max_degree=1, group="direction")
    with pytest.raises(ValidationError, match="max_fit_degree"):
        parse_rule(
            {"rule": "degree", "metric": "out", "along": "h", "max_degree": 4, "max_fit_degree": 3,
             "violation_tolerance": 0.5}
        )
