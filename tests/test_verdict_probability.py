"""``probability``: fraction of 0/1 trials with an exact or Wilson interval."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from theorybench.verdict import RuleError, evaluate, parse_rule
from theorybench.verdict.base import RuleResult
from theorybench.verdict.stats import clopper_pearson


def run(table: pd.DataFrame, **fields) -> RuleResult:
    spec = parse_rule({"rule": "probability", "metric": "trapped", **fields})
    (result,) = evaluate([spec], table)
    return result


def trials(k: int, n: int) -> pd.DataFrame:
    return pd.DataFrame({"seed": np.arange(n), "trapped": [1] * k + [0] * (n - k)})


def test_high_fraction_holds_and_low_fraction_is_refuted():
    result = run(trials(98, 100), op=">", value=0.9)
    assert result.decision == "holds"
    assert result.effect == 0.98
    assert run(trials(50, 100), op=">", value=0.9).decision == "refuted"
    assert run(trials(2, 100), op="<", value=0.1).decision == "holds"
    assert "98/100" in result.summary


def test_few_trials_are_inconclusive():
    assert run(trials(9, 10), op=">", value=0.9).decision == "inconclusive"


@pytest.mark.parametrize(("k", "n"), [(0, 20), (7, 20), (20, 20), (95, 100)])
def test_intervals_match_scipy(k, n):
    exact = stats.binomtest(k, n).proportion_ci(0.95, method="exact")
    cp = run(trials(k, n), op=">", value=0.5)
    assert (cp.ci_low, cp.ci_high) == pytest.approx((exact.low, exact.high))
    assert cp.effect == k / n
    assert cp.p_holds == pytest.approx(stats.binomtest(k, n, 0.5, alternative="greater").pvalue)
    assert cp.p_refuted == pytest.approx(stats.binomtest(k, n, 0.5, alternative="less").pvalue)
    assert 0.0 <= cp.ci_low < cp.ci_high <= 1.0


def test_wilson_is_not_offered():
    with pytest.raises(ValueError, match="clopper-pearson"):
        parse_rule({"rule": "probability", "metric": "t", "op": ">", "value": 0.5,
                    "interval": "wilson"})


def test_clopper_pearson_holds_at_most_alpha_over_2_at_the_threshold():
    n, p = 50, 0.3
    k = np.arange(n + 1)
    holds = np.array([clopper_pearson(int(i), n, 0.95)[0] > p for i in k])
    assert stats.binom.pmf(k, n, p)[holds].sum() <= 0.025


def test_boolean_metric_and_where():
    table = trials(30, 40).assign(trapped=lambda t: t.trapped.astype(bool), game=["x", "y"] * 20)
    result = run(table, op=">", value=0.5, where={"game": "x"})
    assert result.detail == {
        "op": ">",
        "interval": "clopper-pearson",
        "successes": 15,
        "trials": 20,
    }


def test_non_binary_metric_and_bad_value():
    with pytest.raises(RuleError, match="0/1"):
        run(trials(5, 10).assign(trapped=lambda t: t.trapped * 2), op=">", value=0.5)
    with pytest.raises(ValueError, match="less than or equal to 1"):
        parse_rule({"rule": "probability", "metric": "trapped", "op": ">", "value": 90})
