"""Divergence as an outcome: non-finite measurements counted per arm before any rule runs.

A training run or an iteration that blows up leaves NaN or ±inf in the measurement table. The
rules drop non-finite values (they cannot average them), so without this check a diverged arm
would be judged on whatever is left, or on finite columns computed from a diverged state (an
accuracy at chance after the loss became NaN), and reported as science.

A value of one of the experiment kind's numeric columns counts as **diverged** when it is
±inf, or NaN where the measurement exists: the column is NaN in every row of its cell, or
another seed of the same cell has a finite value in the same row position, or a rule reads it
and the seed has no finite value of the rule's metric among the rows the rule selects (its
``where`` rows; for a rule with ``by``, the rows of each compared value). NaN that every seed
shares at a position and that no rule depends on is structure, not divergence (a summary row
leaves per-epoch columns empty). A **diverged seed** has at least one diverged value.

An arm whose fraction of diverged seeds exceeds the spec's ``experiment.divergence_tolerance``
(default 0) gets verdict ``error`` with a message starting ``diverged:``; otherwise its rules
run and each rule result reading a column with diverged values says how many rows it lost.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from theorybench.results import ArmResult


@dataclass
class Divergence:
    """Non-finite measurements of one arm."""

    seeds: int
    rows: int
    diverged_seeds: list[int] = field(default_factory=list)
    diverged_rows: int = 0
    by_column: dict[str, int] = field(default_factory=dict)
    seeds_by_column: dict[str, list[int]] = field(default_factory=dict)

    @property
    def fraction(self) -> float:
        return len(self.diverged_seeds) / self.seeds if self.seeds else 0.0

    def describe(self) -> str:
        columns = ", ".join(f"{c} {n}" for c, n in sorted(self.by_column.items()))
        return (f"{len(self.diverged_seeds)} of {self.seeds} seeds ({self.diverged_rows} of "
                f"{self.rows} rows) have non-finite values (rows per column: {columns})")

    def to_dict(self) -> dict[str, Any]:
        return {"seeds": self.seeds, "rows": self.rows, "diverged_seeds": self.diverged_seeds,
                "diverged_rows": self.diverged_rows, "by_column": self.by_column}


def _numeric(column: pd.Series) -> np.ndarray | None:
    if pd.api.types.is_bool_dtype(column) or not pd.api.types.is_numeric_dtype(column):
        return None
    return column.to_numpy(dtype=float)


def _has_nonfinite(column: pd.Series) -> bool:
    """Whether a numeric ``column`` holds NaN or ±inf: only such a column can hold a diverged
    value (every mask below is a subset of its non-finite rows), so the others are skipped."""
    values = _numeric(column)
    return values is not None and not np.isfinite(values).all()


@dataclass
class Layout:
    """Where each row of an arm's table sits: its cell (``code``) and, in a cell whose seeds
    all have the same number of rows, its (cell, position within its seed) group (``slot``,
    -1 elsewhere or without a ``seed`` column). Computed once per arm, shared by its columns."""

    code: np.ndarray
    n_cells: int
    slot: np.ndarray | None

    @classmethod
    def of(cls, rows: pd.DataFrame) -> Layout:
        cells = rows["cell"].to_numpy() if "cell" in rows.columns else np.zeros(len(rows))
        code, uniques = pd.factorize(cells)
        if "seed" not in rows.columns:
            return cls(code, len(uniques), None)
        groups = pd.DataFrame({"cell": code, "seed": rows["seed"].to_numpy()}).groupby(
            ["cell", "seed"], sort=False)
        position = groups.cumcount().to_numpy()
        even = (groups.size().groupby(level="cell").nunique() == 1).reindex(
            range(len(uniques)), fill_value=False).to_numpy()[code]
        slot = np.where(even, code * (int(position.max(initial=0)) + 1) + position, -1)
        return cls(code, len(uniques), slot)


def diverged_mask(values: np.ndarray, layout: Layout) -> np.ndarray:
    """Rows whose value of one numeric column is diverged (see the module docstring): ±inf;
    NaN in a cell where the column is NaN throughout; NaN where another seed of the same cell
    has a value at the same row position."""
    mask = np.isinf(values)
    nan = np.isnan(values)
    if not nan.any():
        return mask
    present = (~nan).astype(float)
    all_nan = np.bincount(layout.code, weights=present, minlength=layout.n_cells) == 0
    mask |= nan & all_nan[layout.code]
    if layout.slot is not None:
        even = layout.slot >= 0
        seen = np.bincount(layout.slot[even], weights=present[even]) > 0
        mask[even] |= nan[even] & seen[layout.slot[even]]
    return mask


def rule_mask(rows: pd.DataFrame, rule: Any) -> np.ndarray:
    """Rows the rule selects whose metric is non-finite, where a seed (or a seed's compared
    group) has no finite value of the metric at all, or the value is infinite."""
    metric = getattr(rule, "metric", None)
    mask = np.zeros(len(rows), dtype=bool)
    if metric not in rows.columns or "seed" not in rows.columns:
        return mask
    values = _numeric(rows[metric])
    if values is None:
        return mask
    chosen = np.ones(len(rows), dtype=bool)
    for column, wanted in (getattr(rule, "where", None) or {}).items():
        if column not in rows.columns:
            return mask
        chosen &= rows[column].isin(wanted if isinstance(wanted, list) else [wanted]).to_numpy()
    keys: list[Any] = [rows["seed"].to_numpy()]
    by = getattr(rule, "by", None)
    if isinstance(by, str) and by in rows.columns:
        chosen &= rows[by].isin([getattr(rule, "a", None), getattr(rule, "b", None)]).to_numpy()
        keys.append(rows[by].astype(str).to_numpy())
    finite = np.isfinite(values)
    group_finite = pd.Series(finite & chosen).groupby(keys).transform("any").to_numpy()
    return chosen & ~finite & (~group_finite | np.isinf(values))


def count(rows: pd.DataFrame, columns: Sequence[str], rules: Sequence[Any] = ()) -> Divergence:
    """Count the diverged values of ``columns`` (and of the ``rules``' metrics in the rows they
    read) in one arm's measurement table."""
    seeds = sorted(pd.unique(rows["seed"])) if "seed" in rows.columns else []
    found = Divergence(seeds=len(seeds), rows=len(rows))
    present = [c for c in columns if c in rows.columns and _has_nonfinite(rows[c])]
    if rows.empty or not present:
        return found
    any_row = np.zeros(len(rows), dtype=bool)
    layout = Layout.of(rows)
    for column in present:
        mask = diverged_mask(rows[column].to_numpy(dtype=float), layout)
        for rule in rules:
            if getattr(rule, "metric", None) == column:
                mask |= rule_mask(rows, rule)
        if mask.any():
            found.by_column[column] = int(mask.sum())
            found.seeds_by_column[column] = sorted(int(s) for s in
                                                   pd.unique(rows["seed"].to_numpy()[mask]))
            any_row |= mask
    found.diverged_rows = int(any_row.sum())
    if any_row.any() and "seed" in rows.columns:
        found.diverged_seeds = sorted(int(s) for s in pd.unique(rows["seed"].to_numpy()[any_row]))
    return found


def annotate(result: ArmResult, found: Divergence) -> ArmResult:
    """Say in each rule result how many of its metric's values were diverged (and dropped)."""
    for rule in result.rules:
        metric = rule.get("metric")
        n = found.by_column.get(str(metric), 0)
        if n:
            seeds = found.seeds_by_column[str(metric)]
            rule["diverged_rows"], rule["diverged_seeds"] = n, seeds
            rule["summary"] = (f"{rule.get('summary', '')} [{n} non-finite row(s) of {metric} "
                               f"left out; diverged seeds {seeds}]").strip()
    return result


def guard(name: str, required: str | None, rows: pd.DataFrame, columns: Sequence[str],
          rules: Sequence[Any], tolerance: float,
          judge: Callable[[], ArmResult]) -> tuple[ArmResult, Divergence]:
    """The arm's result: ``error`` (``diverged: ...``) when its fraction of diverged seeds
    exceeds ``tolerance``, else ``judge()`` with its rules annotated."""
    found = count(rows, columns, rules)
    if found.diverged_seeds and found.fraction > tolerance:
        message = (f"diverged: {found.describe()}; the spec tolerates a fraction of "
                   f"{tolerance:g} of seeds (experiment.divergence_tolerance)")
        return ArmResult(name, "error", required, [], message), found
    return annotate(judge(), found), found
