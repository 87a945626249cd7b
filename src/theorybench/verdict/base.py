"""What every decision rule shares: its spec fields, its result, and the decision itself.

A rule states a claim about one metric of the measurement table as an interval question. It
computes an effect size and a two-sided confidence interval at level ``confidence``, and compares
the interval with the rule's threshold in the direction the claim predicts:

* ``holds``        the whole interval lies on the claimed side of the threshold;
* ``refuted``      the whole interval lies on the other side;
* ``inconclusive`` the interval straddles the threshold.

So a one-sided error rate of at most ``(1 - confidence) / 2`` for ``holds`` when the true effect
sits exactly at the threshold, and less beyond it.

Every result also carries two one-sided p-values from the same test whose inversion gives the
interval: ``p_holds`` (of the null "the claim does not hold") and ``p_refuted`` (of the null
"the claim is not refuted"). The decision is taken on them (:func:`decide_p`): ``holds`` ⇔
``p_holds ≤ level``, ``refuted`` ⇔ ``p_refuted ≤ level``, with ``level = (1 − confidence) / 2``;
for a single test this is the interval decision above. Rules that combine several tests state
how (intersection–union for ``holds``: the largest p-value; Bonferroni for ``refuted``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

Decision = Literal["holds", "refuted", "inconclusive"]
Verdict = Literal["holds", "refuted", "inconclusive", "error"]
Scalar = str | int | float | bool


class RuleError(ValueError):
    """The table cannot answer the rule (missing column, too few seeds, no finite values)."""


class RuleSpec(BaseModel):
    """Fields common to every rule. Subclasses add ``rule: Literal["name"]`` and their own."""

    model_config = ConfigDict(extra="forbid")

    metric: str = Field(description="column of the measurement table the rule reads")
    where: dict[str, Scalar | list[Scalar]] = Field(
        default_factory=dict, description="keep only rows whose columns equal these values"
    )
    confidence: float = Field(0.95, gt=0.5, lt=1.0, description="two-sided interval level")
    label: str | None = Field(None, description="a short name shown in reports")
    id: str | None = Field(
        None,
        pattern=r"^[a-z0-9_-]+$",
        description="name of the rule within its list (a control's `breaks` refers to it)",
    )


@dataclass
class RuleResult:
    rule: str
    metric: str
    decision: Decision
    effect: float
    ci_low: float
    ci_high: float
    threshold: float | None
    summary: str
    detail: dict[str, Any] = field(default_factory=dict)
    p_holds: float = 1.0
    p_refuted: float = 1.0
    level: float = 0.025
    p_refuted_holm: float | None = None
    id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def decide(ci_low: float, ci_high: float, threshold: float, claimed: str) -> Decision:
    """``claimed`` is ``"above"`` or ``"below"``: the side of ``threshold`` the claim predicts."""
    if claimed == "above":
        if ci_low > threshold:
            return "holds"
        if ci_high < threshold:
            return "refuted"
        return "inconclusive"
    if claimed == "below":
        if ci_high < threshold:
            return "holds"
        if ci_low > threshold:
            return "refuted"
        return "inconclusive"
    raise ValueError(f"claimed side must be 'above' or 'below', got {claimed!r}")


def decide_p(p_holds: float, p_refuted: float, level: float) -> Decision:
    """The decision from the two one-sided p-values at one-sided ``level``."""
    if p_holds <= level:
        return "holds"
    if p_refuted <= level:
        return "refuted"
    return "inconclusive"


def select(table: pd.DataFrame, spec: RuleSpec, *columns: str) -> pd.DataFrame:
    """Rows matching ``spec.where`` with finite ``spec.metric``; raises RuleError when the table
    lacks a needed column or nothing is left."""
    needed = [spec.metric, *spec.where, *columns]
    missing = [c for c in needed if c not in table.columns]
    if missing:
        raise RuleError(f"table has no column {missing}; columns are {list(table.columns)}")
    rows = table
    for col, value in spec.where.items():
        values = value if isinstance(value, list) else [value]
        rows = rows[rows[col].isin(values)]
    values = pd.to_numeric(rows[spec.metric], errors="coerce")
    finite = np.isfinite(values.to_numpy(dtype=float))
    rows = rows[finite]
    if rows.empty:
        raise RuleError(f"no finite values of {spec.metric!r} where {spec.where}")
    return rows
