"""``threshold``: mean over seeds of a per-seed value against a fixed value."""

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


def test_interval_is_the_t_interval():
    table = pd.DataFrame({"seed": [0, 1, 2, 3], "gap": [1.0, 2.0, 3.0, 4.0]})
    result = run(table, op=">", value=0.0)
    half = 3.182446305284263 * np.std([1, 2, 3, 4], ddof=1) / 2
    assert (result.ci_low, result.ci_high) == pytest.approx((2.5 - half, 2.5 + half))


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
