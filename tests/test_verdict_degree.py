"""``degree``: smallest polynomial degree that fits the metric along a variable."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from theorybench.verdict import RuleError, evaluate, parse_rule
from theorybench.verdict.base import RuleResult
from theorybench.verdict.degree import fitted_degree

H = np.linspace(-5.0, 5.0, 41)
POLYS = {
    0: lambda h: 2.0 + 0 * h,
    1: lambda h: 3.0 * h - 1.0,
    2: lambda h: 0.5 * h**2 - h + 2.0,
    3: lambda h: h**3 + h**2 - 5.0 * h + 5.0,
}


def run(table: pd.DataFrame, **fields) -> RuleResult:
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
    result = run(curves([POLYS[true]] * 5), max_degree=max(true, 1), atol=1e-3)
    assert result.effect == true
    assert (result.ci_low, result.ci_high) == (true, true)
    assert result.decision == "holds"
    assert result.detail["seed_degree"] == [true] * 5


def test_cubic_refutes_linear():
    result = run(curves([POLYS[3]] * 5), max_degree=1)
    assert result.decision == "refuted"
    assert result.threshold == 1.5
    assert "claimed <= 1" in result.summary


def test_cosine_needs_a_high_degree():
    result = run(curves([lambda h: np.cos(2 * h)] * 4), max_degree=3)
    assert result.decision == "refuted"
    assert result.effect > 8


def test_mixed_seeds_are_inconclusive():
    result = run(curves([POLYS[1], POLYS[3]] * 2), max_degree=2)
    assert result.effect == 2.0
    assert result.decision == "inconclusive"
    assert result.detail["degree_counts"] == {"1": 2, "3": 2}


def test_group_takes_the_largest_degree_per_seed():
    lines = curves([POLYS[1]] * 3).assign(direction=0)
    bends = curves([POLYS[2]] * 3, seed=1).assign(direction=1)
    table = pd.concat([lines, bends])
    assert run(table, max_degree=2, group="direction").detail["seed_degree"] == [2, 2, 2]
    assert run(table, max_degree=1, group="direction").decision == "refuted"


def test_tolerance_decides_what_counts_as_exact():
    table = curves([lambda h: h + 0.05 * h**2] * 3, noise=0.0)
    assert run(table, max_degree=1, tolerance=0.2).decision == "holds"
    assert run(table, max_degree=1, tolerance=0.01).decision == "refuted"


def test_noisy_constant_needs_atol():
    table = curves([POLYS[0]] * 3)
    assert run(table, max_degree=1).decision == "refuted"
    assert run(table, max_degree=1, atol=1e-3).effect == 0


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
            {"rule": "degree", "metric": "out", "along": "h", "max_degree": 4, "max_fit_degree": 3}
        )
