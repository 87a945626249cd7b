"""Every registered rule is calibrated at its own decision boundary.

``src/theorybench/verdict/calibration_table.json`` (written by ``python -m
theorybench.verdict.calibration --write``) must cover every registered rule and every case of the
calibration grid, with a measured one-sided rate of ``holds`` at most the nominal level plus 3
Monte-Carlo standard errors, and no disagreement between the bulk statistics and the registered
rule. A small subset is measured again here.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from theorybench.registry import rules
from theorybench.verdict import calibration

ROWS = json.loads(calibration.TABLE_JSON.read_text())


def slack(nominal: float, n_draws: int) -> float:
    """3 Monte-Carlo standard errors of a rate at the nominal level."""
    return 3 * math.sqrt(nominal * (1 - nominal) / n_draws)


def key(row: dict) -> tuple:
    return (row["rule"], row["variant"], row["seeds"], row["levels"], row["noise"],
            row["threshold"])


def test_every_registered_rule_has_rows_at_its_boundary():
    """Every rule of the package itself; a plug-in's rules (an installed claim package, e.g.
    examples/claim-package) are calibrated by their own tests."""
    builtin = {name for name, entry in rules().items()
               if entry.evaluate.__module__.startswith("theorybench.")}
    assert builtin and builtin <= {row["rule"] for row in ROWS}


def test_the_table_covers_the_calibration_grid():
    grid = {
        (c.rule, c.variant, c.seeds, c.levels, c.noise, c.threshold) for c in calibration.cases()
    }
    assert {key(row) for row in ROWS} == grid
    assert {row["seeds"] for row in ROWS} == set(calibration.SEEDS)
    assert {"normal", "t3", "discrete"} <= {row["noise"] for row in ROWS}


@pytest.mark.parametrize("row", ROWS, ids=lambda r: "-".join(map(str, key(r))))
def test_measured_rate_is_at_most_nominal(row):
    assert row["rate_holds"] <= row["nominal"] + slack(row["nominal"], calibration.N_DRAWS)
    assert row["mismatches"] == 0
    assert set(calibration.KEYS) <= set(row)
    assert 0.0 <= row["power"] <= 1.0


def _subset() -> list[calibration.Case]:
    """One case per rule and variant at 8 seeds and normal (or 0/1) noise, cheapest levels."""
    chosen: dict[tuple[str, str], calibration.Case] = {}
    for case in calibration.cases(seeds={8}, noises={"normal", "bernoulli"}):
        best = chosen.get((case.rule, case.variant))
        if best is None or (case.levels or 0) < (best.levels or 0):
            chosen[(case.rule, case.variant)] = case
    return list(chosen.values())


@pytest.mark.parametrize("case", _subset(), ids=lambda c: f"{c.rule}-{c.variant}")
def test_remeasured_subset(case):
    n_draws = 1500
    row = calibration.measure(case, np.random.default_rng(7), n_draws, 200, rule_checks=10)
    assert row["rate_holds"] <= row["nominal"] + slack(row["nominal"], n_draws)
    assert row["mismatches"] == 0
