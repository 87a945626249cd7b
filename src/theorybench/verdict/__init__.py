"""The verdict engine: decision rules applied to a measurement table, combined into a verdict.

A claim **holds** when every rule holds: an intersection–union test, whose level is the rules'
one-sided level ``(1 − confidence)/2`` with no correction (a false ``holds`` needs every rule to
err). It is **refuted** when Holm's step-down procedure over the rules' ``p_refuted`` rejects at
least one of the nulls "rule is not refuted" at that level (family-wise error at most the level
across the claim's rules), and **inconclusive** otherwise. Each result keeps its Holm-adjusted
``p_refuted_holm``. ``error`` (the experiment or a rule could not run) is decided by the runner,
which catches the exception.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from theorybench.registry import get_rule, rules
from theorybench.verdict.base import RuleError, RuleResult, RuleSpec, Verdict
from theorybench.verdict.stats import holm

__all__ = ["RuleError", "RuleResult", "RuleSpec", "Verdict", "combine", "evaluate", "parse_rule"]


def parse_rule(raw: dict[str, Any]) -> RuleSpec:
    """Validate one rule mapping from a spec against its registered model."""
    name = raw.get("rule")
    if not isinstance(name, str):
        raise KeyError(f"unknown rule {name!r}; known: {sorted(rules())}")
    return get_rule(name).spec.model_validate(raw)


def evaluate(specs: Sequence[RuleSpec], table: pd.DataFrame, seed: int = 0) -> list[RuleResult]:
    """Apply each rule to ``table``; resampling draws come from a generator seeded by ``seed``."""
    results = []
    for i, spec in enumerate(specs):
        entry = get_rule(spec.rule)  # type: ignore[attr-defined]
        result = entry.evaluate(spec, table, np.random.default_rng([seed, i]))
        result.id = spec.id
        results.append(result)
    return results


def combine(results: Sequence[RuleResult]) -> Verdict:
    """The claim's verdict from its rules' results; sets each result's ``p_refuted_holm``.

    ``holds`` when every rule holds (intersection–union); ``refuted`` when the smallest
    Holm-adjusted ``p_refuted`` is at most the level (the smallest of the rules' levels);
    ``inconclusive`` otherwise, and for an empty list.
    """
    if not results:
        return "inconclusive"
    adjusted = holm([r.p_refuted for r in results])
    for result, p in zip(results, adjusted, strict=True):
        result.p_refuted_holm = p
    level = min(r.level for r in results)
    if all(r.decision == "holds" for r in results):
        return "holds"
    if min(adjusted) <= level:
        return "refuted"
    return "inconclusive"
