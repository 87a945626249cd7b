"""``trend``: sign test on per-seed Kendall tau along a swept column; monotone step test."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from theorybench.verdict import RuleError, evaluate, parse_rule
from theorybench.verdict.base import RuleResult


def run(table: pd.DataFrame, **fields) -> RuleResult:
    spec = parse_rule({"rule": "trend", "metric": "y", "along": "depth", **fields})
    (result,) = evaluate([spec], table)
    return result


def grid(values: np.ndarray, depths=(2, 4, 6, 8, 10)) -> pd.DataFrame:
    """Table from a seeds × levels array of metric values."""
    n_seeds, n_levels = values.shape
    return pd.DataFrame(
        {
            "seed": np.repeat(np.arange(n_seeds), n_levels),
            "depth": np.tile(np.asarray(depths[:n_levels]), n_seeds),
            "y": values.ravel(),
        }
    )


def rising(n_seeds: int = 8, noise: float = 0.1, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return grid(np.arange(5.0) + noise * rng.normal(size=(n_seeds, 5)))


def test_clear_increasing_trend_holds():
    result = run(rising(), direction="increasing", min_effect=0.5)
    assert result.decision == "holds"
    assert result.effect == 1.0 and result.detail["median_tau"] == 1.0
    assert result.threshold == 0.5
    assert "Kendall tau" in result.summary and "claimed > 0.5" in result.summary
    assert result.p_holds == pytest.approx(0.5**8) and result.p_refuted == 1.0


def test_all_seeds_agree_but_the_interval_does_not_collapse():
    result = run(rising(), direction="increasing", min_effect=0.5)
    assert result.detail["seed_tau"] == [1.0] * 8
    assert 0.0 <= result.ci_low < result.ci_high <= 1.0
    assert result.ci_low == pytest.approx(0.025 ** (1 / 8))


def test_intervals_stay_in_range():
    rng = np.random.default_rng(3)
    for _ in range(20):
        result = run(grid(rng.normal(size=(4, 5))), direction="increasing")
        assert 0.0 <= result.ci_low <= result.effect <= result.ci_high <= 1.0


def test_five_seeds_cannot_hold_at_95_percent():
    result = run(rising(n_seeds=5), direction="increasing", min_effect=0.5)
    assert result.effect == 1.0 and result.decision == "inconclusive"


def test_opposite_direction_is_refuted():
    result = run(rising(), direction="decreasing")
    assert result.decision == "refuted"
    assert result.effect == 0.0 and result.detail["median_tau"] == -1.0


def test_decreasing_trend_holds():
    table = rising()
    table["y"] = -table["y"]
    assert run(table, direction="decreasing", min_effect=0.3).decision == "holds"


def test_weak_trend_is_refuted_against_a_large_min_effect():
    rng = np.random.default_rng(1)
    table = grid(0.3 * np.arange(5.0) + rng.normal(size=(16, 5)))
    result = run(table, direction="increasing", min_effect=0.95)
    assert result.decision == "refuted"
    assert result.effect < 0.5 and result.ci_high < 0.5


def test_mixed_seeds_are_inconclusive():
    # per-seed taus 1, -0.8, 0.4: 2 of 3 above 0, an interval around one half
    values = np.array([[1, 2, 3, 4, 5], [5, 4, 3, 1, 2], [3, 1, 2, 5, 4.0]])
    result = run(grid(values), direction="increasing")
    assert result.decision == "inconclusive"
    assert result.detail["seed_tau"] == pytest.approx([1.0, -0.8, 0.4])
    assert result.ci_low < 0.5 < result.ci_high


def test_rows_at_the_same_level_are_averaged():
    table = rising()
    doubled = pd.concat([table.assign(y=table["y"] + 1.0), table.assign(y=table["y"] - 1.0)])
    assert run(doubled, direction="increasing").effect == pytest.approx(
        run(table, direction="increasing").effect
    )


def test_where_selects_rows():
    table = pd.concat([rising().assign(init="he"), rising().assign(init="lecun", y=lambda t: -t.y)])
    assert run(table, direction="increasing", where={"init": "he"}).decision == "holds"
    assert run(table, direction="increasing", where={"init": "lecun"}).decision == "refuted"


def test_flat_seed_counts_as_no_trend():
    values = np.vstack([np.arange(5.0)] * 3 + [np.ones(5)])
    result = run(grid(values), direction="increasing")
    assert result.detail["seed_tau"] == [1.0, 1.0, 1.0, 0.0]


def test_detail_is_json_and_has_the_curve():
    result = run(rising(), direction="increasing")
    detail = json.loads(json.dumps(result.to_dict()))["detail"]
    assert detail["levels"] == [2.0, 4.0, 6.0, 8.0, 10.0]
    assert len(detail["level_mean"]) == 5 and detail["n_seeds"] == 8


def test_too_few_seeds():
    with pytest.raises(RuleError, match="at least 3 seeds"):
        run(rising(n_seeds=2), direction="increasing")


def test_too_few_levels():
    table = rising()
    with pytest.raises(RuleError, match="3 distinct"):
        run(table[table["depth"] <= 4], direction="increasing")


def test_missing_column():
    with pytest.raises(RuleError, match="no column"):
        run(rising().drop(columns="depth"), direction="increasing")


def test_spec_fields_are_checked():
    with pytest.raises(ValidationError):
        parse_rule({"rule": "trend", "metric": "y", "along": "d", "direction": "up"})
    with pytest.raises(ValidationError):
        parse_rule(
            {
                "rule": "trend",
                "metric": "y",
                "along": "d",
                "direction": "increasing",
                "min_effct": 0.3,
            }
        )


def rise_and_fall(n_seeds: int = 16, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return grid(np.array([0.0, 2.0, 3.0, 2.0, 1.0]) + 0.1 * rng.normal(size=(n_seeds, 5)))


def test_rise_and_fall_fails_the_monotone_test():
    table = rise_and_fall()
    # most seeds have tau > 0 (three rises, two falls count less than they should) ...
    assert run(table, direction="decreasing").decision != "holds"
    loose = run(table, direction="increasing", min_effect=0.0)
    assert loose.detail["median_tau"] > 0
    # ... but two steps go down on every seed: not monotone increasing, and refuted
    strict = run(table, direction="increasing", min_effect=0.0, monotone=True)
    assert strict.decision == "refuted"
    assert strict.detail["step_fraction"] == [1.0, 1.0, 0.0, 0.0]
    assert strict.p_holds == 1.0
    assert "weakest step" in strict.summary


def test_monotone_curve_passes_the_monotone_test():
    result = run(rising(), direction="increasing", min_effect=0.5, monotone=True)
    assert result.decision == "holds"
    assert result.detail["p_monotone"] == pytest.approx(0.5**8)


def test_p_values_agree_with_the_decision():
    rng = np.random.default_rng(5)
    for i in range(30):
        table = grid(0.2 * i * np.arange(5.0) / 30 + rng.normal(size=(8, 5)))
        r = run(table, direction="increasing", min_effect=0.3)
        assert (r.decision == "holds") == (r.p_holds <= r.level) == (r.ci_low > 0.5)
        assert (r.decision == "refuted") == (r.p_refuted <= r.level) == (r.ci_high < 0.5)
