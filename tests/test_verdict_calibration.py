"""Calibration of the rules: ``holds`` under a null at most at the nominal rate; power at a
documented effect size (see ``theorybench.verdict.calibration``)."""

from __future__ import annotations

import json

import pytest

from theorybench.verdict.calibration import calibration_report

N_DRAWS = 2000
ALPHA = 0.05


@pytest.fixture(scope="module")
def report() -> dict:
    return calibration_report(n_draws=N_DRAWS, seed=20240601, n_seeds=8, n_levels=5)


@pytest.mark.parametrize("name", ["trend", "compare", "threshold"])
def test_false_positive_rate_and_power(report, name):
    row = report[name]
    print(
        f"\n{name}: false-positive rate {row['false_positive_rate']:.4f} "
        f"(± {row['false_positive_se']:.4f}, nominal one-sided {ALPHA / 2}), power "
        f"{row['power']:.3f} at {row['power_at']}, {row['n_draws']} draws, {row['n_seeds']} seeds"
    )
    assert row["n_draws"] == N_DRAWS and row["nominal_alpha"] == pytest.approx(ALPHA)
    assert 0.005 <= row["false_positive_rate"] <= ALPHA
    assert row["power"] >= 0.8
    assert row["rule_mismatches"] == 0


def test_report_is_json(report):
    json.dumps(report)
