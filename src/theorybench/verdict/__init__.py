"""The verdict engine: decision rules applied to a measurement table, combined into a verdict.

A claim **holds** when every rule holds, is **refuted** when any rule is refuted, and is
**inconclusive** otherwise. ``error`` (the experiment or a rule could not run) is decided by the
runner, which catches the exception.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from theorybench.registry import Verdict, rules
from theorybench.verdict import (  # noqa: F401  (registers the rules)
    compare,
    degree,
    peak,
    probability,
    rate,
    threshold,
    trend,
)
from theorybench.verdict.base import RuleError, RuleResult, RuleSpec

__all__ = ["RuleError", "RuleResult", "RuleSpec", "combine", "evaluate", "parse_rule"]


def parse_rule(raw: dict[str, Any]) -> RuleSpec:
    """Validate one rule mapping from a spec against its registered model."""
    name = raw.get("rule")
    known = rules()
    if name not in known:
        raise KeyError(f"unknown rule {name!r}; known: {sorted(known)}")
    model, _ = known[name]
    return model.model_validate(raw)


def evaluate(specs: Sequence[RuleSpec], table: pd.DataFrame, seed: int = 0) -> list[RuleResult]:
    """Apply each rule to ``table``; resampling draws come from a generator seeded by ``seed``."""
    known = rules()
    results = []
    for i, spec in enumerate(specs):
        _, fn = known[spec.rule]  # type: ignore[attr-defined]
        results.append(fn(spec, table, np.random.default_rng([seed, i])))
    return results


def combine(results: Sequence[RuleResult]) -> Verdict:
    decisions = [r.decision for r in results]
    if any(d == "refuted" for d in decisions):
        return "refuted"
    if decisions and all(d == "holds" for d in decisions):
        return "holds"
    return "inconclusive"
