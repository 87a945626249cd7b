"""``peak``: confidence set for the best grid level against a window, and the excess over both
ends."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from theorybench.verdict import RuleError, evaluate, parse_rule
from theorybench.verdict.base import RuleResult
from theorybench.verdict.rules.peak import grid_cells

RATIOS = 2.0 ** np.arange(-3, 4)  # 0.125 ... 8


def run(table: pd.DataFrame, **fields) -> RuleResult:
    spec = parse_rule({"rule": "peak", "metric": "risk", "along": "ratio", **fields})
    (result,) = evaluate([spec], table)
    return result


def curve(fn, n_seeds: int = 8, noise: float = 0.05, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    y = fn(RATIOS) + noise * rng.normal(size=(n_seeds, RATIOS.size))
    return pd.DataFrame(
        {
            "seed": np.repeat(np.arange(n_seeds), RATIOS.size),
            "ratio": np.tile(RATIOS, n_seeds),
            "risk": y.ravel(),
        }
    )


def bump(at: float):
    return lambda x: np.exp(-((np.log(x) - np.log(at)) ** 2) / 2)


def test_interior_peak_in_the_window_holds():
    result = run(curve(bump(1.0)), window=[0.5, 2.0], log_along=True)
    assert result.decision == "holds"
    assert result.effect == 1.0
    assert (result.ci_low, result.ci_high) == pytest.approx((2**-0.5, 2**0.5))
    assert result.detail["peak_level"] == 1.0
    assert result.detail["location_decision"] == result.detail["excess_decision"] == "holds"


def test_monotone_curve_is_refuted():
    result = run(curve(np.log), window=[0.5, 2.0], log_along=True)
    assert result.decision == "refuted"
    assert result.effect == pytest.approx(8.0)
    assert result.detail["excess_decision"] == "refuted"


def test_monotone_curve_is_refuted_even_when_the_window_holds_the_end():
    result = run(curve(np.log), window=[0.5, 10.0])
    assert result.detail["location_decision"] == "holds"
    assert result.decision == "refuted"


def test_peak_outside_the_window_is_refuted():
    result = run(curve(bump(4.0)), window=[0.5, 2.0], log_along=True)
    assert result.decision == "refuted"
    assert result.detail["location_decision"] == "refuted"
    assert result.effect == pytest.approx(4.0, rel=0.1)


def test_flat_noise_is_inconclusive():
    result = run(curve(lambda x: 0 * x, n_seeds=4, noise=1.0, seed=2), window=[0.5, 2.0])
    assert result.decision == "inconclusive"


def test_min_excess():
    table = curve(bump(1.0))
    assert run(table, window=[0.5, 2.0], log_along=True, min_excess=0.5).decision == "holds"
    assert run(table, window=[0.5, 2.0], log_along=True, min_excess=1.0).decision == "refuted"


def test_grid_cells():
    left, right = grid_cells(np.array([0.0, 1.0, 3.0, 4.0]))
    assert left == pytest.approx([-0.5, 0.5, 2.0, 3.5])
    assert right == pytest.approx([0.5, 2.0, 3.5, 4.5])


def test_location_interval_is_never_narrower_than_the_grid_even_when_seeds_agree():
    result = run(curve(bump(1.0), noise=0.0), window=[0.5, 2.0], log_along=True)
    assert result.detail["kept_levels"] == [1.0]
    assert np.log(result.ci_high) - np.log(result.ci_low) == pytest.approx(np.log(2.0))
    assert result.decision == "holds"


def test_a_tie_just_outside_the_window_is_not_a_peak_inside_it():
    table = curve(lambda x: np.where((x == 1.0) | (x == 2.0), 1.0, 0.0))
    result = run(table, window=[0.7, 1.4], log_along=True)
    assert set(result.detail["kept_levels"]) == {1.0, 2.0}
    assert result.detail["location_decision"] == "inconclusive"
    assert result.ci_low == pytest.approx(2**-0.5) and result.ci_high == pytest.approx(2**1.5)
    assert result.decision == "inconclusive"
    assert (result.p_holds > 0.025) and (result.p_refuted > 0.025)


def test_incomplete_seeds_are_dropped_and_detail_is_json():
    table = curve(bump(1.0), n_seeds=5)
    table = table[~((table["seed"] == 4) & (table["ratio"] == 8.0))]
    result = run(table, window=[0.5, 2.0], log_along=True)
    detail = json.loads(json.dumps(result.to_dict()))["detail"]
    assert detail["dropped_seeds"] == [4] and detail["n_seeds"] == 4
    assert len(detail["level_mean"]) == 7


def test_errors():
    with pytest.raises(RuleError, match="3 levels"):
        run(curve(bump(1.0)).query("ratio < 0.3"), window=[0.5, 2.0])
    with pytest.raises(RuleError, match="at least 3 seeds"):
        run(curve(bump(1.0), n_seeds=2), window=[0.5, 2.0])
    with pytest.raises(RuleError, match="positive"):
        run(curve(bump(1.0)).assign(ratio=lambda t: t.ratio - 1), window=[0.5, 2.0], log_along=True)
    with pytest.raises(ValidationError, match="lo <= hi"):
        parse_rule({"rule": "peak", "metric": "risk", "along": "ratio", "window": [2, 1]})
