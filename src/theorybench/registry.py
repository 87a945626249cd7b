"""Experiment kinds, decision rules and baseline methods, looked up by name.

* An **experiment kind** is a pure function ``fn(params, seeds, device) -> DataFrame``. ``params``
  is an instance of the kind's pydantic model (validated at the spec boundary), ``seeds`` a tuple
  of ints, ``device`` a ``torch.device``. It returns one row per seed (and per step, phase, ...
  as the kind documents), with a ``seed`` column and every column named in ``columns``. It draws
  all randomness from the seeds, writes no files and keeps no global state, so the same call
  returns the same rows. Register with :func:`experiment`.
* A **decision rule** is a pure function ``fn(rule_spec, table, rng) -> RuleResult`` (see
  ``verdict/base.py``), registered with :func:`rule` under its spec model's ``rule`` literal.
* A **method** is a plug-in that competes inside a task (an attack, a training scheme, a min-max
  algorithm). Methods live in ``baselines/<family>.py`` and register with :func:`method`;
  :func:`load_baselines` imports every file in ``baselines/``.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args

import pandas as pd
import torch
from pydantic import BaseModel

from theorybench.paths import baselines_dir

ExperimentFn = Callable[[Any, Sequence[int], torch.device], pd.DataFrame]


@dataclass(frozen=True)
class ExperimentKind:
    name: str
    family: str
    fn: ExperimentFn
    params: type[BaseModel]
    columns: tuple[str, ...]
    example: dict[str, Any] = field(default_factory=dict)
    cost: Callable[[Any], float] | None = None

    def __call__(self, params: dict[str, Any], seeds: Sequence[int], device: torch.device):
        return self.fn(self.params.model_validate(params), tuple(seeds), device)


_EXPERIMENTS: dict[str, ExperimentKind] = {}
_RULES: dict[str, tuple[type[BaseModel], Callable[..., Any]]] = {}
_METHODS: dict[str, dict[str, Any]] = {}
_loaded_baselines: set[Path] = set()


def experiment(
    name: str,
    *,
    family: str,
    params: type[BaseModel],
    columns: Sequence[str],
    example: dict[str, Any],
    cost: Callable[[Any], float] | None = None,
) -> Callable[[ExperimentFn], ExperimentFn]:
    """Register ``fn`` as experiment kind ``name``; ``example`` is a tiny, fast parameter set
    used by the conformance test. ``cost(params)`` estimates the work of one seed of one cell
    in arbitrary but kind-consistent units (see :mod:`theorybench.cost` for the default)."""

    def register(fn: ExperimentFn) -> ExperimentFn:
        if name in _EXPERIMENTS and _EXPERIMENTS[name].fn is not fn:
            raise ValueError(f"experiment kind {name!r} is registered twice")
        _EXPERIMENTS[name] = ExperimentKind(name, family, fn, params, tuple(columns), example,
                                            cost)
        return fn

    return register


def load_experiments() -> None:
    """Import every experiment module so that its kinds are registered."""
    importlib.import_module("theorybench.experiments")


def get_experiment(name: str) -> ExperimentKind:
    load_experiments()
    try:
        return _EXPERIMENTS[name]
    except KeyError:
        raise KeyError(f"unknown experiment kind {name!r}; known: {sorted(_EXPERIMENTS)}") from None


def experiment_kinds() -> dict[str, ExperimentKind]:
    load_experiments()
    return dict(_EXPERIMENTS)


def rule(spec_model: type[BaseModel]) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register a decision rule; its name is the ``rule: Literal[...]`` field of ``spec_model``."""
    (name,) = get_args(spec_model.model_fields["rule"].annotation)

    def register(fn: Callable[..., Any]) -> Callable[..., Any]:
        _RULES[name] = (spec_model, fn)
        return fn

    return register


def rules() -> dict[str, tuple[type[BaseModel], Callable[..., Any]]]:
    importlib.import_module("theorybench.verdict")
    return dict(_RULES)


def method(family: str, name: str) -> Callable[[Any], Any]:
    """Register a baseline method (function or class) of ``family`` under ``name``."""

    def register(obj: Any) -> Any:
        _METHODS.setdefault(family, {})[name] = obj
        return obj

    return register


def load_baselines(folder: Path | None = None) -> None:
    """Import each ``baselines/*.py`` once, by path (the folder is not a package)."""
    folder = (folder or baselines_dir()).resolve()
    for path in sorted(folder.glob("*.py")):
        if path in _loaded_baselines or path.name.startswith("_"):
            continue
        module_name = f"theorybench_baselines_{path.stem}"
        spec = importlib.util.spec_from_file_location(module_name, path)
        if spec is None or spec.loader is None:
            continue
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module
        spec.loader.exec_module(module)
        _loaded_baselines.add(path)


def methods(family: str) -> dict[str, Any]:
    load_baselines()
    return dict(_METHODS.get(family, {}))


def get_method(family: str, name: str) -> Any:
    known = methods(family)
    try:
        return known[name]
    except KeyError:
        raise KeyError(f"unknown {family} method {name!r}; known: {sorted(known)}") from None


Verdict = Literal["holds", "refuted", "inconclusive", "error"]
