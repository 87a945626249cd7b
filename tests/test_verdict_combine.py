"""``combine``: intersection–union for ``holds``, Holm's step-down over ``p_refuted``."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from pydantic import ValidationError

from theorybench.verdict import combine, evaluate, parse_rule
from theorybench.verdict.base import RuleResult, decide_p
from theorybench.verdict.stats import holm


def result(p_holds: float, p_refuted: float, level: float = 0.025) -> RuleResult:
    return RuleResult(
        rule="threshold", metric="y", decision=decide_p(p_holds, p_refuted, level), effect=0.0,
        ci_low=0.0, ci_high=1.0, threshold=0.0, summary="", p_holds=p_holds,
        p_refuted=p_refuted, level=level,
    )


def test_holm_adjusted_p_values():
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert holm([0.5, 0.001]) == pytest.approx([0.5, 0.002])
    assert holm([]) == []


def test_holds_only_when_every_rule_holds():
    assert combine([result(0.001, 1.0), result(0.02, 1.0)]) == "holds"
    assert combine([result(0.001, 1.0), result(0.2, 0.5)]) == "inconclusive"
    assert combine([]) == "inconclusive"


def test_refuted_needs_holm_to_reject():
    # one rule refuted at 0.02 on its own, but with three rules Holm needs 0.025 / 3
    rules = [result(1.0, 0.02), result(0.5, 0.5), result(0.5, 0.6)]
    assert rules[0].decision == "refuted"
    assert combine(rules) == "inconclusive"
    assert rules[0].p_refuted_holm == pytest.approx(0.06)
    strong = [result(1.0, 0.005), result(0.5, 0.5), result(0.5, 0.6)]
    assert combine(strong) == "refuted"
    assert [r.p_refuted_holm for r in strong] == pytest.approx([0.015, 1.0, 1.0])


def test_results_keep_id_and_p_values_in_json():
    table = pd.DataFrame({"seed": range(8), "y": [0.1, 0.2, 0.15, 0.3, 0.25, 0.2, 0.1, 0.18]})
    specs = [
        parse_rule({"rule": "threshold", "metric": "y", "op": ">", "value": 0.0, "id": "gap"}),
        parse_rule({"rule": "threshold", "metric": "y", "op": "<", "value": 0.0}),
    ]
    results = evaluate(specs, table)
    assert combine(results) == "refuted"
    first = json.loads(json.dumps(results[0].to_dict()))
    assert first["id"] == "gap" and first["decision"] == "holds"
    assert {"p_holds", "p_refuted", "p_refuted_holm", "level"} <= set(first)
    assert results[1].p_refuted_holm <= 0.025


def test_rule_id_pattern():
    with pytest.raises(ValidationError):
        parse_rule({"rule": "threshold", "metric": "y", "op": ">", "value": 0, "id": "Bad Id"})
