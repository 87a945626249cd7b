"""Checks of a task spec beyond its schema: what would otherwise pass validation and fail,
hang or mislead later.

* **finite numbers**: NaN and ±inf are refused in parameters, sweeps, overrides, rules and
  reference values (a parameter field may allow them with ``json_schema_extra={"nonfinite":
  True}``);
* **names**: task ids safe as file names on every OS; control names unique, never ``claim``
  (the claim's arm), so that no two arms pool their rows;
* **sweeps**: at most ``MAX_SWEEP_VALUES`` values per parameter, no value twice (a repeated
  value would count the same trials twice as independent);
* **columns**: every column a rule reads (``metric``, ``along``, ``by``, ``where`` keys, ...)
  is one the experiment kind declares, a swept parameter, or ``arm``/``cell``/``seed``.

Each check adds problems to a :class:`theorybench.spec.Problems`; none raises.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, Protocol

from pydantic import BaseModel

from theorybench.yaml_safe import short

MAX_TEXT = 20_000
MAX_ID_PART = 64
MAX_NAME = 64
MAX_SWEEP_VALUES = 1_000
# Names Windows refuses for a file, whatever the extension.
RESERVED = {"con", "prn", "aux", "nul", *(f"com{i}" for i in range(10)),
            *(f"lpt{i}" for i in range(10))}
# Fields of rule specs that name a column of the measurement table.
COLUMN_FIELDS = ("metric", "along", "by", "group", "predicted_column", "order_by")
TABLE_COLUMNS = ("arm", "cell", "seed")


class Sink(Protocol):
    def add(self, field: str, message: str) -> None: ...


def nonfinite(value: Any, field: str) -> Iterator[tuple[str, str]]:
    """(field, message) for every NaN or infinite float inside ``value`` (nested lists and
    mappings)."""
    if isinstance(value, float) and not math.isfinite(value):
        yield field, f"must be a finite number (got {value})"
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from nonfinite(item, f"{field}.{short(key, 40, raw=True)}")
    elif isinstance(value, list | tuple):
        for i, item in enumerate(value):
            yield from nonfinite(item, f"{field}[{i}]")


def texts(value: Any, field: str) -> Iterator[tuple[str, str]]:
    """Strings longer than MAX_TEXT characters (keys too) anywhere in ``value``."""
    if isinstance(value, str) and len(value) > MAX_TEXT:
        yield field, f"{len(value)} characters, more than the limit of {MAX_TEXT}"
    elif isinstance(value, dict):
        for key, item in value.items():
            sub = f"{field}.{short(key, 40, raw=True)}" if field else short(key, 40, raw=True)
            yield from texts(key, sub)
            yield from texts(item, sub)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from texts(item, f"{field}[{i}]")


def nonfinite_params(params: BaseModel) -> Iterator[tuple[str, str]]:
    """Non-finite numbers in validated parameters (fields relative to them), except in fields
    that allow them."""
    for name, info in type(params).model_fields.items():
        extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
        if not extra.get("nonfinite"):
            value = getattr(params, name)
            yield from nonfinite(value.model_dump() if isinstance(value, BaseModel) else value,
                                 name)


def task_id(value: str, problems: Sink) -> None:
    """``family/claim``, each part at most MAX_ID_PART characters, not starting or ending with
    a dot, not a reserved device name (``con``, ``nul``, ``com1``, ...)."""
    for part in value.split("/"):
        if len(part) > MAX_ID_PART:
            problems.add("id", f"each part of the id must have at most {MAX_ID_PART} "
                               f"characters (got {len(part)})")
        if part.startswith(".") or part.endswith("."):
            problems.add("id", f"a part of the id may not start or end with '.' "
                               f"(got {short(part)})")
        if part.split(".")[0] in RESERVED:
            problems.add("id", f"{short(part)} is a reserved file name on Windows")


def control_names(names: Sequence[str], problems: Sink) -> None:
    seen: dict[str, int] = {}
    for i, name in enumerate(names):
        field = f"controls[{i}].name"
        if name == "claim":
            problems.add(field, "'claim' names the claim's own arm; choose another name")
        elif not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.+-]*", name) or len(name) > MAX_NAME:
            problems.add(field, f"expected letters, digits, '-', '_', '.', '+' (at most "
                                f"{MAX_NAME}), got {short(name)}")
        if name in seen:
            problems.add(field, f"duplicate control name {short(name)} (also controls"
                                f"[{seen[name]}]): the two arms would pool their rows")
        seen.setdefault(name, i)


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def sweeps(named: Iterable[tuple[str, dict[str, list[Any]]]], problems: Sink) -> None:
    for field, sweep in named:
        for name, values in sweep.items():
            where = f"{field}.{short(name, 60, raw=True)}"
            if len(values) > MAX_SWEEP_VALUES:
                problems.add(where, f"{len(values)} values, more than the limit of "
                                    f"{MAX_SWEEP_VALUES}")
                continue
            seen: dict[str, int] = {}
            for j, value in enumerate(values):
                key = _canonical(value)
                if key in seen:
                    problems.add(f"{where}[{j}]", f"{short(value)} repeats {where}[{seen[key]}] "
                                                  "(its trials would be counted twice)")
                seen.setdefault(key, j)


def available_columns(kind_columns: Sequence[str],
                      sweeps: Iterable[dict[str, list[Any]]]) -> set[str]:
    """Columns of an arm's measurement table: the kind's, the swept parameters', the runner's."""
    columns = {*TABLE_COLUMNS, *kind_columns}
    for sweep in sweeps:
        columns.update(sweep)
    return columns


def rule_columns(rules: Sequence[BaseModel], field: str, columns: set[str],
                 problems: Sink) -> None:
    """Every column a rule reads must exist. A field left at its default counts when the rule
    uses it (``along``; ``order_by`` when ``per_seed`` is ``last``)."""
    known = ", ".join(sorted(columns))
    for i, rule in enumerate(rules):
        used = rule.model_fields_set
        names: list[tuple[str, str]] = []
        for name in COLUMN_FIELDS:
            value = getattr(rule, name, None)
            relevant = (name in used or name == "along"
                        or (name == "order_by" and getattr(rule, "per_seed", None) == "last"))
            if isinstance(value, str) and relevant:
                names.append((name, value))
        names += [("pair_on", v) for v in getattr(rule, "pair_on", None) or []
                  if isinstance(v, str)]
        names += [(f"where.{short(k, 40, raw=True)}", k) for k in getattr(rule, "where", {}) or {}]
        for sub, column in names:
            if column not in columns:
                problems.add(f"{field}[{i}].{sub}", f"no column {short(column)} in the "
                                                    f"measurement table; columns: {known}")
