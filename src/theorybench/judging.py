"""Judging an arm: the divergence check, then the decision rules on the arm's rows; a judgment
already made on the same inputs is read back instead of made again.

An arm's result (its verdict, every rule's statistics, its count of non-finite values) is a
pure function of

* its rows of the measurement table (keyed by the whole table's values, column names and
  dtypes, and the arm's name),
* its rules as specified, its required verdict and the rule it breaks,
* the kind's columns, the spec's ``divergence_tolerance`` and the rule seed (resampling draws
  come from a generator seeded by it),
* the code that judges: this module, the verdict engine and the divergence check, each rule's
  module, and every project module they import (:func:`theorybench.cache.source_hash`),
* the versions of Python, numpy, scipy and pandas.

A rerun whose cells come back unchanged (the cell cache's hits) has nothing new to judge, so
the judgment is stored beside the cell cache (``<cache dir>/judgments/<key[:2]>/<key>.pkl``)
under the sha256 of all of the above: a changed row, rule, tolerance or line of judging code
is judged afresh. Errors (a rule that raised, an arm that diverged beyond its tolerance) are
never stored. Runs without a cell cache (``--no-cache``, ``pytest -m suite``) judge every arm.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import pickle
import platform
from collections.abc import Sequence
from functools import cache
from pathlib import Path

import orjson
import pandas as pd

from theorybench import divergence
from theorybench.cache import source_hash, write_atomic
from theorybench.registry import get_rule
from theorybench.results import ArmResult
from theorybench.spec import ResolvedArm
from theorybench.specstore import words
from theorybench.verdict import RuleError, combine, evaluate

FOLDER = "judgments"


def judge(arm: ResolvedArm, rows: pd.DataFrame, seed: int) -> ArmResult:
    """The arm's verdict from its rules (``error`` when a rule cannot be applied)."""
    try:
        results = evaluate(arm.rules, rows, seed)
    except (RuleError, ValueError, KeyError) as exc:
        return ArmResult(arm.name, "error", arm.required_verdict, [], f"rule: {exc}")
    # Each rule's statistics travel with the rule as specified and in words, so a record
    # stays readable after its spec changes. A control is judged by the rule it is meant to
    # break.
    broken = results[arm.breaks_at].decision if arm.breaks_at is not None else None
    specs = [spec.model_dump(mode="json") for spec in arm.rules]
    return ArmResult(arm.name, combine(results), arm.required_verdict,
                     [r.to_dict() | {"spec": fields, "description": words(fields)}
                      for r, fields in zip(results, specs, strict=True)],
                     breaks=arm.breaks, breaks_decision=broken)


@cache
def _versions() -> tuple[str, ...]:
    return (platform.python_version(),
            *(importlib.metadata.version(name) for name in ("numpy", "scipy", "pandas")))


def table_digest(table: pd.DataFrame) -> str:
    """sha256 of a measurement table's values, column by column, with the column names and
    dtypes: numbers by their bits, other values by their ``repr``. An arm's rows are the table's
    rows of that arm, so the table's digest and the arm's name key the arm's rows."""
    digest = hashlib.sha256(orjson.dumps([[str(c), str(d)] for c, d in table.dtypes.items()]))
    for _, column in table.items():
        values = column.to_numpy()
        digest.update(values.tobytes() if values.dtype.kind in "biufcmM"
                      else "\0".join(map(repr, values)).encode())
    return digest.hexdigest()


def judgment_key(arm: ResolvedArm, table: str, columns: Sequence[str], tolerance: float,
                 seed: int) -> str:
    """The sha256 of everything the arm's judgment depends on (see the module docstring);
    ``table`` is the measurement table's :func:`table_digest`."""
    rules = [spec.model_dump(mode="json") for spec in arm.rules]
    modules = sorted({__name__, *(get_rule(r["rule"]).source.__module__ for r in rules)})
    payload = {
        "table": table,
        "arm": [arm.name, arm.required_verdict, arm.breaks, arm.breaks_at], "rules": rules,
        "columns": list(columns), "tolerance": tolerance, "seed": seed,
        "source": [source_hash(m) for m in modules], "versions": _versions(),
    }
    return hashlib.sha256(orjson.dumps(payload, option=orjson.OPT_SORT_KEYS)).hexdigest()


class JudgmentCache:
    """Judgments on disk under ``<cache dir>/judgments/``; unreadable entries are misses and a
    failure to write only skips the entry."""

    def __init__(self, cache_dir: Path | str) -> None:
        self.folder = Path(cache_dir) / FOLDER

    def _path(self, key: str) -> Path:
        return self.folder / key[:2] / f"{key}.pkl"

    def get(self, key: str) -> tuple[ArmResult, divergence.Divergence] | None:
        try:
            with self._path(key).open("rb") as handle:
                found = pickle.load(handle)
        except (OSError, EOFError, pickle.UnpicklingError, AttributeError, ImportError):
            return None
        return found if isinstance(found, tuple) and len(found) == 2 else None

    def put(self, key: str, judged: tuple[ArmResult, divergence.Divergence]) -> None:
        try:
            write_atomic(self._path(key), pickle.dumps(judged, protocol=pickle.HIGHEST_PROTOCOL))
        except OSError:
            return


def judge_arm(arm: ResolvedArm, rows: pd.DataFrame, columns: Sequence[str], tolerance: float,
              seed: int, store: JudgmentCache | None = None, table: str | None = None
              ) -> tuple[ArmResult, divergence.Divergence, bool]:
    """The arm's result and divergence count (:func:`divergence.guard` around :func:`judge`) on
    its ``rows`` of the measurement table whose :func:`table_digest` is ``table``, and whether
    they were read from ``store`` (used only with ``table``)."""
    key = (judgment_key(arm, table, columns, tolerance, seed)
           if store is not None and table is not None else None)
    if store is not None and key is not None and (found := store.get(key)) is not None:
        return found[0], found[1], True
    result, found_nonfinite = divergence.guard(
        arm.name, arm.required_verdict, rows, columns, arm.rules, tolerance,
        lambda: judge(arm, rows, seed))
    if store is not None and key is not None and result.verdict != "error":
        store.put(key, (result, found_nonfinite))
    return result, found_nonfinite, False
