"""One registry of plug-ins, with typed entries: experiment kinds, method families and their
methods, decision rules, and data sets.

* An **experiment kind** is a pure function ``fn(params, seeds, device) -> DataFrame``. ``params``
  is an instance of the kind's pydantic model (validated at the spec boundary), ``seeds`` a tuple
  of ints, ``device`` a ``torch.device``. It returns one row per seed (and per step, phase, ...
  as the kind documents), with a ``seed`` column and every column named in ``columns``. It draws
  all randomness from the seeds, each seed from its own stream, writes no files and keeps no
  global state, so the same call returns the same rows. Register with :func:`experiment`.
* A **method family** names a ``typing.Protocol`` its methods satisfy (an adversarial-training
  loss, a min-max algorithm, a game). Declare it with :func:`method_family`; register methods with
  :func:`method`, which checks each against the family's protocol.
* A **decision rule** is ``evaluate(rule_spec, table, rng) -> RuleResult`` (``verdict/base.py``)
  with its spec model, a sentence describing a spec in words and its figure on the site.
  Register with :func:`rule`; its name is the spec model's ``rule`` literal.
* A **data set** is a loader ``load(**options)`` with a description and, for data read from disk,
  a ``fabricate(root)`` that writes a tiny copy in the on-disk format (used by the dry run).

Registering a name twice with a different object is an error, as is an entry that does not match
its kind. Entries come from the package's own plug-in modules (:data:`BUILTIN_PACKAGES`), from
the modules installed packages declare under the ``theorybench.plugins`` entry-point group, and
from folders passed to :func:`include` (``--include DIR``, or a suite's ``include:``); never from
the working directory. Lookups load the built-ins and entry points on first use, so importing
this module imports no plug-in.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.metadata
import importlib.util
import inspect
import pkgutil
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, get_args

import pandas as pd
import torch
from pydantic import BaseModel

from theorybench.forkserver import BUILTIN_PACKAGES

ENTRY_POINT_GROUP = "theorybench.plugins"
INCLUDE_PREFIX = "theorybench_include_"
"""Module names of the plug-in files of ``--include`` folders start with this."""

ExperimentFn = Callable[[Any, Sequence[int], torch.device], pd.DataFrame]


class RegistryError(ValueError):
    """An entry clashes with another of the same name or does not match its kind."""


class UnknownEntryError(RegistryError, KeyError):
    """A lookup names no registered entry (a ``KeyError`` too, for callers that look up)."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


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

    @property
    def source(self) -> Any:
        return self.fn


@dataclass(frozen=True)
class MethodFamily:
    name: str
    protocol: type
    description: str
    check: Callable[[Any], None] | None = None
    """Behavioural conformance of one method (raises AssertionError), run by the test suite."""

    @property
    def source(self) -> Any:
        return self.protocol


@dataclass(frozen=True)
class Method:
    family: str
    name: str
    obj: Any

    @property
    def source(self) -> Any:
        return self.obj


@dataclass(frozen=True)
class Rule:
    name: str
    spec: type[BaseModel]
    evaluate: Callable[..., Any]
    describe: Callable[[dict[str, Any]], str]
    figure: Callable[..., str | None]

    @property
    def source(self) -> Any:
        return self.evaluate


@dataclass(frozen=True)
class Dataset:
    name: str
    load: Callable[..., Any]
    description: str
    fabricate: Callable[[Path], None] | None = None

    @property
    def source(self) -> Any:
        return self.load


class _Entries:
    """The registered entries of every kind, and which plug-in sources have been loaded."""

    def __init__(self) -> None:
        self.experiments: dict[str, ExperimentKind] = {}
        self.families: dict[str, MethodFamily] = {}
        self.methods: dict[str, dict[str, Method]] = {}
        self.rules: dict[str, Rule] = {}
        self.datasets: dict[str, Dataset] = {}
        self.loaded = False
        self.included: set[Path] = set()


_ENTRIES = _Entries()


def _origin(entry: Any) -> str:
    """Where an entry's object is defined (a module imported twice gives the same origin)."""
    target = entry.source
    return f"{getattr(target, '__module__', '?')}.{getattr(target, '__qualname__', '?')}"


def _add(table: dict[str, Any], what: str, name: str, entry: Any) -> None:
    """Add ``entry``; the same object registered again (a module imported twice) is a no-op."""
    old = table.get(name)
    if old is not None and _origin(old) != _origin(entry):
        raise RegistryError(f"{what} {name!r} is registered twice: by {_origin(old)} and by "
                            f"{_origin(entry)}")
    table[name] = entry


# -- registration --------------------------------------------------------------------------------

def experiment(name: str, *, family: str, params: type[BaseModel], columns: Sequence[str],
               example: dict[str, Any], cost: Callable[[Any], float] | None = None,
               ) -> Callable[[ExperimentFn], ExperimentFn]:
    """Register ``fn`` as experiment kind ``name``; ``example`` is a tiny, fast parameter set
    used by the conformance test (it must validate against ``params``). ``cost(params)``
    estimates the work of one seed of one cell (see :mod:`theorybench.cost` for the default)."""

    def register(fn: ExperimentFn) -> ExperimentFn:
        if not (isinstance(params, type) and issubclass(params, BaseModel)):
            raise RegistryError(f"experiment kind {name!r}: params must be a pydantic model")
        if len(inspect.signature(fn).parameters) != 3:
            raise RegistryError(f"experiment kind {name!r}: fn must take (params, seeds, device)")
        _add(_ENTRIES.experiments, "experiment kind", name,
             ExperimentKind(name, family, fn, params, tuple(columns), dict(example), cost))
        return fn

    return register


def method_family(name: str, protocol: type, description: str,
                  check: Callable[[Any], None] | None = None) -> None:
    """Declare a family of methods; each of its methods must satisfy ``protocol`` (checked on
    registration) and pass ``check(method)`` (a tiny behavioural test the conformance suite runs
    on every method of the family, as scikit-learn's ``check_estimator``)."""
    if not getattr(protocol, "_is_protocol", False):
        raise RegistryError(f"method family {name!r}: {protocol!r} is not a typing.Protocol")
    _add(_ENTRIES.families, "method family", name,
         MethodFamily(name, protocol, description, check))


def _protocol_members(protocol: type) -> dict[str, Any]:
    members: dict[str, Any] = {}
    for klass in reversed(protocol.__mro__):
        if klass in (object,) or not getattr(klass, "_is_protocol", False):
            continue
        for attr, value in vars(klass).items():
            if attr == "__call__" or not attr.startswith("_"):
                members[attr] = value
        for attr in getattr(klass, "__annotations__", {}):
            if not attr.startswith("_"):
                members.setdefault(attr, None)
    return members


def protocol_mismatch(obj: Any, protocol: type) -> str | None:
    """Why ``obj`` does not satisfy ``protocol`` (every member present; callables accept the
    protocol's arguments), or ``None`` when it does."""
    for attr, declared in _protocol_members(protocol).items():
        target = obj if attr == "__call__" else getattr(obj, attr, _MISSING)
        if target is _MISSING:
            return f"has no attribute {attr!r}"
        if not callable(declared):
            continue
        if not callable(target):
            return f"{attr!r} is not callable"
        wanted = list(inspect.signature(declared).parameters.values())[1:]  # drop self
        try:
            signature = inspect.signature(target)
        except (TypeError, ValueError):
            continue
        if isinstance(obj, type) and attr != "__call__":
            params = list(signature.parameters.values())[1:]
            signature = signature.replace(parameters=params)
        try:
            signature.bind(*[None for p in wanted if p.kind <= p.POSITIONAL_OR_KEYWORD],
                           **{p.name: None for p in wanted if p.kind == p.KEYWORD_ONLY})
        except TypeError as exc:
            return f"{attr!r} does not accept the protocol's arguments ({exc})"
    return None


_MISSING = object()


def method(family: str, name: str) -> Callable[[Any], Any]:
    """Register ``obj`` (a function or class) as method ``name`` of ``family``, checked against
    the family's protocol (the family must be declared first)."""

    def register(obj: Any) -> Any:
        declared = _ENTRIES.families.get(family)
        if declared is None:
            raise RegistryError(f"method {name!r}: unknown method family {family!r}; declared: "
                                f"{sorted(_ENTRIES.families)}")
        why = protocol_mismatch(obj, declared.protocol)
        if why is not None:
            raise RegistryError(f"{family} method {name!r} does not satisfy "
                                f"{declared.protocol.__name__}: it {why}")
        _add(_ENTRIES.methods.setdefault(family, {}), f"{family} method", name,
             Method(family, name, obj))
        return obj

    return register


def rule(spec_model: type[BaseModel], *, describe: Callable[[dict[str, Any]], str],
         figure: Callable[..., str | None]) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register ``evaluate`` as a decision rule named by ``spec_model``'s ``rule`` literal, with
    ``describe(fields)`` (the spec in words) and ``figure`` (its figure on the site)."""
    annotation = spec_model.model_fields.get("rule")
    names = get_args(annotation.annotation) if annotation is not None else ()
    if len(names) != 1:
        raise RegistryError(f"rule spec {spec_model.__name__} needs a field "
                            "`rule: Literal['<name>']`")
    (name,) = names

    def register(evaluate: Callable[..., Any]) -> Callable[..., Any]:
        if not (callable(describe) and callable(figure)):
            raise RegistryError(f"rule {name!r}: describe and figure must be callables")
        _add(_ENTRIES.rules, "rule", name, Rule(name, spec_model, evaluate, describe, figure))
        return evaluate

    return register


def dataset(name: str, *, description: str, fabricate: Callable[[Path], None] | None = None,
            ) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register ``load`` as data set ``name``; ``fabricate(root)`` writes a tiny copy of an
    on-disk data set under ``root`` in its real format."""

    def register(load: Callable[..., Any]) -> Callable[..., Any]:
        _add(_ENTRIES.datasets, "data set", name, Dataset(name, load, description, fabricate))
        return load

    return register


# -- discovery -----------------------------------------------------------------------------------

def _import_package(package: str) -> None:
    module = importlib.import_module(package)
    for info in pkgutil.iter_modules(module.__path__):
        if not info.name.startswith("_"):
            importlib.import_module(f"{package}.{info.name}")


def load() -> None:
    """Import the built-in plug-in modules and every ``theorybench.plugins`` entry point (once)."""
    if _ENTRIES.loaded:
        return
    _ENTRIES.loaded = True
    try:
        for package in BUILTIN_PACKAGES:
            _import_package(package)
        for point in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
            try:
                point.load()
            except Exception as exc:
                raise RegistryError(f"plug-in entry point {point.name!r} ({point.value}) "
                                    f"failed to load: {type(exc).__name__}: {exc}") from exc
    except BaseException:
        _ENTRIES.loaded = False
        raise


def include(folders: Iterable[str | Path]) -> None:
    """Import the plug-ins of each folder: a package folder (with ``__init__.py``) is imported as
    that package; otherwise every ``*.py`` file in it (not starting with ``_``) is imported as a
    module of its own. Each folder is imported once."""
    load()
    for folder in folders:
        path = Path(folder).expanduser().resolve()
        if path in _ENTRIES.included:
            continue
        if not path.is_dir():
            raise RegistryError(f"--include {folder}: no such folder")
        if (path / "__init__.py").is_file():
            parent = str(path.parent)
            if parent not in sys.path:
                sys.path.insert(0, parent)
            _import_package(path.name)
        else:
            for file in sorted(path.glob("*.py")):
                if file.name.startswith("_"):
                    continue
                digest = hashlib.sha256(str(path).encode()).hexdigest()[:12]
                name = f"{INCLUDE_PREFIX}{digest}_{file.stem}"
                spec = importlib.util.spec_from_file_location(name, file)
                if spec is None or spec.loader is None:
                    raise RegistryError(f"--include {folder}: cannot import {file.name}")
                module = importlib.util.module_from_spec(spec)
                sys.modules[name] = module
                spec.loader.exec_module(module)
        _ENTRIES.included.add(path)


def included() -> tuple[str, ...]:
    """The folders :func:`include` has imported, for workers that must import them too."""
    return tuple(sorted(str(p) for p in _ENTRIES.included))


# -- lookups -------------------------------------------------------------------------------------

def _lookup(table: dict[str, Any], what: str, name: str) -> Any:
    load()
    try:
        return table[name]
    except KeyError:
        raise UnknownEntryError(f"unknown {what} {name!r}; known: {sorted(table)}") from None


def get_experiment(name: str) -> ExperimentKind:
    return _lookup(_ENTRIES.experiments, "experiment kind", name)


def experiment_kinds() -> dict[str, ExperimentKind]:
    load()
    return dict(_ENTRIES.experiments)


def method_families() -> dict[str, MethodFamily]:
    load()
    return dict(_ENTRIES.families)


def methods(family: str) -> dict[str, Any]:
    """The methods of ``family``, name → the registered function or class."""
    _lookup(_ENTRIES.families, "method family", family)
    return {name: m.obj for name, m in _ENTRIES.methods.get(family, {}).items()}


def get_method(family: str, name: str) -> Any:
    _lookup(_ENTRIES.families, "method family", family)
    return _lookup(_ENTRIES.methods.get(family, {}), f"{family} method", name).obj


def get_rule(name: str) -> Rule:
    return _lookup(_ENTRIES.rules, "rule", name)


def rules() -> dict[str, Rule]:
    load()
    return dict(_ENTRIES.rules)


def get_dataset(name: str) -> Dataset:
    return _lookup(_ENTRIES.datasets, "data set", name)


def datasets() -> dict[str, Dataset]:
    load()
    return dict(_ENTRIES.datasets)
