"""``compare``: paired difference of two arms over seeds."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from theorybench.verdict import RuleError, evaluate, parse_rule
from theorybench.verdict.base import RuleResult


def run(table: pd.DataFrame, **fields) -> RuleResult:
    spec = parse_rule({"rule": "compare", "metric": "err", "by": "method", **fields})
    (result,) = evaluate([spec], table)
    return result


def arms(diff: float, noise: float, n_seeds: int = 8, seed_sd: float = 0.0, seed: int = 0):
    """``err(a) = err(b) + diff + noise``, both arms sharing a per-seed offset of size seed_sd."""
    rng = np.random.default_rng(seed)
    base = 1.0 + seed_sd * rng.normal(size=n_seeds)
    a = base + diff + noise * rng.normal(size=n_seeds)
    return pd.DataFrame(
        {
            "seed": np.tile(np.arange(n_seeds), 2),
            "method": ["a"] * n_seeds + ["b"] * n_seeds,
            "err": np.concatenate([a, base]),
        }
    )


def test_a_clearly_less_holds_and_the_opposite_is_refuted():
    table = arms(-0.3, 0.05)
    less = run(table, a="a", b="b", direction="a_less")
    assert less.decision == "holds"
    assert less.effect == pytest.approx(-0.3, abs=0.05)
    assert run(table, a="a", b="b", direction="a_greater").decision == "refuted"


def test_pairing_removes_shared_seed_variation():
    table = arms(0.2, 0.02, seed_sd=10.0)
    result = run(table, a="a", b="b", direction="a_greater")
    assert result.decision == "holds"
    assert result.ci_high - result.ci_low < 0.1


def test_margin():
    table = arms(-0.3, 0.01)
    assert run(table, a="a", b="b", direction="a_less", margin=0.2).decision == "holds"
    result = run(table, a="a", b="b", direction="a_less", margin=0.5)
    assert result.decision == "refuted"
    assert result.threshold == -0.5


def test_negative_margin_states_non_inferiority():
    table = arms(0.01, 0.002)
    assert run(table, a="a", b="b", direction="a_less").decision == "refuted"
    assert run(table, a="a", b="b", direction="a_less", margin=-0.05).decision == "holds"


def test_relative_difference():
    table = arms(0.0, 1e-6)
    table.loc[table["method"] == "a", "err"] *= 0.9
    result = run(table, a="a", b="b", direction="a_less", relative=True, margin=0.05)
    assert result.effect == pytest.approx(-0.1, abs=1e-5)
    assert result.decision == "holds"
    assert run(table, a="a", b="b", direction="a_less", relative=True, margin=0.2).decision == (
        "refuted"
    )


def test_noise_is_inconclusive():
    result = run(arms(0.0, 1.0, n_seeds=4, seed=3), a="a", b="b", direction="a_less")
    assert result.decision == "inconclusive"


def test_pair_on_other_keys_and_unpaired_rows_dropped():
    table = pd.concat([arms(-0.3, 0.05).assign(step=s) for s in (1, 2, 3)], ignore_index=True)
    extra = pd.DataFrame({"seed": [99], "method": ["a"], "err": [100.0], "step": [1]})
    result = run(pd.concat([table, extra]), a="a", b="b", direction="a_less", pair_on=["step"])
    assert result.decision == "holds"
    assert result.detail["n_pairs"] == 24 and result.detail["n_seeds"] == 8
    json.dumps(result.to_dict())


def test_numeric_arm_values():
    table = arms(0.5, 0.05)
    table["method"] = table["method"].map({"a": 16, "b": 4})
    assert run(table, a=16, b=4, direction="a_greater").decision == "holds"


def test_errors():
    table = arms(0.5, 0.05)
    with pytest.raises(RuleError, match="no rows with method == 'c'"):
        run(table, a="c", b="b", direction="a_less")
    with pytest.raises(RuleError, match="no column"):
        run(table.drop(columns="method"), a="a", b="b", direction="a_less")
    with pytest.raises(RuleError, match="at least 3 seeds"):
        run(arms(0.5, 0.05, n_seeds=2), a="a", b="b", direction="a_less")


def test_identical_differences_do_not_collapse_the_interval():
    # one arm converges on every trajectory, the other never: d = 1 on every seed
    table = pd.DataFrame(
        {"seed": np.tile(np.arange(6), 2), "method": ["a"] * 6 + ["b"] * 6,
         "err": [1.0] * 6 + [0.0] * 6}
    )
    result = run(table, a="a", b="b", direction="a_greater", margin=0.5)
    assert result.decision == "holds" and result.effect == 1.0
    assert 0.5 < result.ci_low < result.ci_high == 1.0
    less = run(table, a="a", b="b", direction="a_less", margin=0.5)
    assert less.decision == "refuted" and less.effect == 0.0 and less.ci_high < 0.5
    assert run(table[table.seed < 4], a="a", b="b", direction="a_greater").decision == (
        "inconclusive"
    )


def test_p_values_match_the_decision_and_bounds_clip():
    table = arms(-0.05, 0.1, n_seeds=5)
    result = run(table, a="a", b="b", direction="a_less", bounds=[-0.06, 1.0])
    assert result.ci_low == -0.06
    assert (result.decision == "holds") == (result.p_holds <= 0.025)
    assert (result.decision == "refuted") == (result.p_refuted <= 0.025)
