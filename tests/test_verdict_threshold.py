"""``threshold``: mean over seeds (t test) or fraction of violating seeds (exact binomial)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from theorybench.verdict import RuleError, evaluate, parse_rule
from theorybench.verdict.base import RuleResult


def run(table: pd.DataFrame, **fields) -> RuleResult:
    spec = parse_rule({"rule": "threshold", "metric": "gap", **fields})
    (result,) = evaluate([spec], table)
    return result


def seeds(mean: float, sd: float, n: int = 8, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"seed": np.arange(n), "gap": mean + sd * rng.normal(size=n)})


def test_clear_effect_holds_and_opposite_is_refuted():
    table = seeds(1.0, 0.05)
    result = run(table, op=">", value=0.5)
    assert result.decision == "holds"
    assert result.effect == pytest.approx(table["gap"].mean())
    assert run(table, op="<", value=0.5).decision == "refuted"
    assert "claimed > 0.5" in result.summary


def test_noisy_is_inconclusive():
    assert run(seeds(0.55, 1.0, n=4), op=">", value=0.5).decision == "inconclusive"


def test_interval_is_the_continuity_corrected_t_interval():
    # integer values: lattice spacing 1, so the interval widens by 1 / (2n) each side
    table = pd.DataFrame({"seed": [0, 1, 2, 3], "gap": [1.0, 2.0, 3.0, 4.0]})
    result = run(table, op=">", value=0.0)
    half = 3.182446305284263 * np.std([1, 2, 3, 4], ddof=1) / 2 + 1 / 8
    assert (result.ci_low, result.ci_high) == pytest.approx((2.5 - half, 2.5 + half))


def test_p_values_agree_with_the_interval():
    for i in range(20):
        table = seeds(0.5 + 0.05 * (i - 10), 0.2, n=6, seed=i)
        r = run(table, op=">", value=0.5)
        assert (r.decision == "holds") == (r.p_holds <= 0.025) == (r.ci_low > 0.5)
        assert (r.decision == "refuted") == (r.p_refuted <= 0.025) == (r.ci_high < 0.5)


def test_all_seeds_agree_the_interval_does_not_collapse():
    table = pd.DataFrame({"seed": range(8), "gap": np.zeros(8)})
    result = run(table, op="<", value=0.01)
    assert result.ci_low < result.ci_high
    assert result.decision == "holds" and result.p_holds == pytest.approx(0.5**8)
    assert "sign test" in result.detail["interval"]
    # 4 agreeing seeds cannot decide by themselves (0.5^4 > 0.025)
    assert run(table.head(4), op="<", value=0.01).decision == "inconclusive"


def test_interval_stays_inside_bounds():
    table = pd.DataFrame({"seed": range(4), "gap": [0.001, 0.0, 0.002, 0.05]})
    result = run(table, op="<", value=0.1, bounds=[0.0, None])
    assert result.ci_low == 0.0 < result.ci_high
    assert run(table, op="<", value=0.1).ci_low < 0.0


def test_bound_claim_counts_violating_seeds():
    table = pd.DataFrame({"seed": range(8), "gap": [0.0] * 7 + [0.02]})
    fields = {"op": "<", "value": 0.01, "form": "seeds"}
    tight = run(table, violation_tolerance=0.1, **fields)
    assert tight.effect == 1 / 8 and tight.decision == "inconclusive"
    assert 0.0 < tight.ci_low < tight.ci_high < 1.0
    assert run(table, violation_tolerance=0.6, **fields).decision == "holds"
    clean = table.assign(gap=0.0)
    assert run(clean, violation_tolerance=0.4, **fields).decision == "holds"
    assert run(clean, violation_tolerance=0.3, **fields).decision == "inconclusive"
    bad = table.assign(gap=1.0)
    assert run(bad, violation_tolerance=0.4, **fields).decision == "refuted"
    # ties at the value violate a strict bound
    assert run(table.assign(gap=0.01), violation_tolerance=0.4, **fields).decision == "refuted"


def test_bound_claim_needs_its_tolerance():
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="violation_tolerance"):
        parse_rule({"rule": "threshold", "metric": "g", "op": "<", "value": 0, "form": "seeds"})
    with pytest.raises(ValidationError, match="violation_tolerance"):
        parse_rule({"rule": "threshold", "metric": "g", "op": "<", "value": 0,
                    "violation_tolerance": 0.2})


def curves() -> pd.DataFrame:
    """Per seed s: gap = s-independent 0, 5, 1 at steps 0, 1, 2 (+ a tiny seed offset)."""
    rows = [
        {"seed": s, "step": k, "gap": v + 0.01 * s}
        for s in range(4)
        for k, v in zip((2, 0, 1), (1.0, 0.0, 5.0), strict=True)
    ]
    return pd.DataFrame(rows)


@pytest.mark.parametrize(
    ("per_seed", "expected"), [("mean", 2.0), ("max", 5.0), ("min", 0.0), ("last", 1.0)]
)
def test_per_seed_reduction(per_seed, expected):
    result = run(curves(), op=">", value=-1.0, per_seed=per_seed)
    assert result.effect == pytest.approx(expected + 0.015)


def test_last_needs_its_order_column():
    with pytest.raises(RuleError, match="no column"):
        run(curves().drop(columns="step"), op=">", value=0.0, per_seed="last")
    renamed = curves().rename(columns={"step": "epoch"})
    assert run(renamed, op=">", value=0.0, per_seed="last", order_by="epoch").effect == (
        pytest.approx(1.015)
    )


def test_too_few_seeds_and_missing_metric():
    with pytest.raises(RuleError, match="at least 3 seeds"):
        run(seeds(1.0, 0.1, n=2), op=">", value=0.0)
    with pytest.raises(RuleError, match="no column"):
        run(seeds(1.0, 0.1).rename(columns={"gap": "other"}), op=">", value=0.0)
