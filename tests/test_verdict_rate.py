"""``rate``: per-seed least-squares slope of ln(metric) per step."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from theorybench.verdict import RuleError, evaluate, parse_rule
from theorybench.verdict.base import RuleResult


def run(table: pd.DataFrame, **fields) -> RuleResult:
    spec = parse_rule({"rule": "rate", "metric": "loss", **fields})
    (result,) = evaluate([spec], table)
    return result


def decay(
    rho: float | np.ndarray, n_seeds: int = 5, steps: int = 200, jitter: float = 1e-7
) -> pd.DataFrame:
    """loss_s(k) = C_s · rho_s^k · exp(jitter · z) with a different C_s per seed."""
    k = np.arange(steps)
    rho = np.broadcast_to(np.asarray(rho, dtype=float), (n_seeds,))
    rng = np.random.default_rng(0)
    return pd.concat(
        pd.DataFrame(
            {"seed": s, "step": k,
             "loss": (1.0 + s) * rho[s] ** k * np.exp(jitter * rng.normal(size=steps))}
        )
        for s in range(n_seeds)
    )


def test_exact_geometric_decay_recovers_the_slope():
    result = run(decay(0.99))
    assert result.effect == pytest.approx(np.log(0.99), abs=1e-6)
    assert result.ci_high - result.ci_low < 1e-6
    assert result.decision == "holds"
    assert result.detail["seed_slope"] == pytest.approx([np.log(0.99)] * 5, abs=1e-6)


def test_op_and_value():
    table = decay(0.99)
    assert run(table, op="<", value=float(np.log(0.995))).decision == "holds"
    assert run(table, op="<", value=float(np.log(0.98))).decision == "refuted"
    assert run(table, op=">", value=0.0).decision == "refuted"


def test_window_ignores_the_plateau():
    table = decay(0.9, steps=100)
    table["loss"] = np.maximum(table["loss"], 1e-3)
    whole = run(table)
    window = run(table, from_step=0, to_step=40)
    assert window.effect == pytest.approx(np.log(0.9), abs=1e-6)
    assert whole.effect > np.log(0.9) + 0.01


def test_other_step_column():
    table = decay(0.95).rename(columns={"step": "epoch"})
    assert run(table, along="epoch").effect == pytest.approx(np.log(0.95), abs=1e-6)


def test_predicted_rate():
    table = decay(0.99)
    faster = run(table.assign(bound=np.log(0.995)), predicted_column="bound")
    assert faster.decision == "holds"
    assert faster.effect == pytest.approx(np.log(0.99) - np.log(0.995), abs=1e-6)
    assert faster.detail["seed_predicted"] == pytest.approx([np.log(0.995)] * 5)
    assert run(table.assign(bound=np.log(0.98)), predicted_column="bound").decision == "refuted"
    json.dumps(faster.to_dict())


def test_identical_slopes_use_the_sign_test():
    five = run(decay(0.99, jitter=0.0), op="<", value=0.0)
    assert "sign test" in five.detail["interval"] and five.decision == "inconclusive"
    assert 0.0 <= five.ci_low < five.ci_high <= 1.0
    six = run(decay(0.99, n_seeds=6, jitter=0.0), op="<", value=0.0)
    assert six.decision == "holds" and six.effect == 1.0 and six.threshold == 0.5
    assert six.p_holds == pytest.approx(0.5**6)


def test_spread_of_seeds_around_flat_is_inconclusive():
    table = decay(np.array([0.99, 1.01, 1.0, 0.995, 1.004]))
    assert run(table).decision == "inconclusive"


def test_errors():
    table = decay(0.99)
    with pytest.raises(RuleError, match="positive"):
        run(table.assign(loss=table["loss"] - 0.5))
    with pytest.raises(RuleError, match="at least 3 seeds"):
        run(decay(0.99, n_seeds=2))
    with pytest.raises(RuleError, match="no column"):
        run(table.drop(columns="step"))
    with pytest.raises(RuleError, match="at least 3 seeds"):
        run(table, from_step=10, to_step=10)
